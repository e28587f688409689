using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using Google.Protobuf;
using Onnx;

namespace ClipGen.Onnx;

/// <summary>The arithmetic precision of an exported graph.</summary>
public enum OnnxPrecision
{
    /// <summary>float32 arithmetic (the weights may still be stored as float16, see <see cref="OnnxWeightStorage"/>).</summary>
    Float32,

    /// <summary>
    /// int8 matrix multiplies: weights quantized per output channel (symmetric), activations quantized at run time
    /// (<see cref="OnnxQuantizer"/>). Everything else stays float32.
    /// </summary>
    Int8,
}

/// <summary>How <see cref="OnnxQuantizer"/> stores the quantized weights.</summary>
public enum OnnxInt8Weights
{
    /// <summary>
    /// Signed 7-bit values in [-63, 63] (ONNX Runtime's "reduce_range"). On x86 CPUs without VNNI, ORT multiplies uint8
    /// activations by int8 weights with <c>vpmaddubsw</c>, which adds two products into a saturating int16; with weights
    /// within ±63 the pair sum (at most 2·255·63 = 32,130) cannot saturate. The default.
    /// </summary>
    Int8ReducedRange,

    /// <summary>Signed 8-bit values in [-127, 127]: twice the weight resolution, but pair sums can saturate on AVX2 (see above).</summary>
    Int8,

    /// <summary>Unsigned values with zero point 128 (symmetric in effect): ORT's u8u8 kernels, which never saturate but are slower on AVX2.</summary>
    Uint8,
}

/// <summary>Which operators carry the quantized matrix multiplies.</summary>
public enum OnnxInt8Operator
{
    /// <summary>One <c>com.microsoft.DynamicQuantizeMatMul</c> per layer (activation quantization, integer GEMM, scale and bias in one kernel). ONNX Runtime only.</summary>
    DynamicQuantizeMatMul,

    /// <summary>
    /// Standard ONNX: <c>DynamicQuantizeLinear</c> → <c>MatMulInteger</c> → <c>Cast</c> → <c>Mul</c> (scales) → <c>Add</c>
    /// (bias). Portable to any runtime; ORT fuses it back into the contrib kernel.
    /// </summary>
    MatMulInteger,
}

/// <summary>Options of <see cref="OnnxQuantizer"/>.</summary>
public sealed record OnnxQuantizationOptions
{
    /// <summary>Weight storage (default: 7-bit signed; the measurements behind the choice are in docs/onnx.md).</summary>
    public OnnxInt8Weights Weights { get; init; } = OnnxInt8Weights.Int8ReducedRange;

    /// <summary>The operator form (default: the fused contrib op).</summary>
    public OnnxInt8Operator Operator { get; init; } = OnnxInt8Operator.DynamicQuantizeMatMul;

    /// <summary>
    /// Weight initializers whose matrix multiplies stay float32, matched by full name or by the last dotted part
    /// (<c>proj</c> matches <c>visual.proj</c>). Default: the towers' output projections, which cost under 0.1 % of the
    /// time and feed the embeddings directly.
    /// </summary>
    public IReadOnlyList<string> KeepFloat { get; init; } = DefaultKeepFloat;

    /// <summary>The default of <see cref="KeepFloat"/>.</summary>
    public static readonly IReadOnlyList<string> DefaultKeepFloat = ["proj", "text_projection"];
}

/// <summary>What <see cref="OnnxQuantizer"/> did to a graph.</summary>
/// <param name="Quantized">Weight initializers whose matrix multiplies became int8, in graph order.</param>
/// <param name="KeptFloat">Constant-weight matrix multiplies left in float32 (by <see cref="OnnxQuantizationOptions.KeepFloat"/>).</param>
public sealed record OnnxQuantizationReport(IReadOnlyList<string> Quantized, IReadOnlyList<string> KeptFloat);

/// <summary>
/// Turns a finished float32 ONNX graph into an int8 one (dynamic quantization, as ONNX Runtime's <c>quantize_dynamic</c>
/// does, written here as a pass over the protobuf so that it needs neither Python nor TorchSharp):
/// <list type="bullet">
/// <item>every <c>MatMul</c> whose second input is a constant 2-D weight — an initializer, or an initializer through
/// <c>Transpose</c> (nn.Linear's <c>MatMul(x, Transpose(W))</c>, pre-transposed here) and/or a float16 → float32
/// <c>Cast</c> — gets its weight quantized per output channel, symmetric: <c>scale_n = max_k |W[k,n]| / qmax</c>,
/// <c>q = round(W / scale)</c> (half to even);</item>
/// <item>a following <c>Add</c> of a constant [N] bias is folded into the quantized op;</item>
/// <item>activations are quantized at run time per tensor (uint8, asymmetric) by the operator itself.</item>
/// </list>
/// Everything else — LayerNorm, softmax, the attention products of two activations, GELU, residual sums, convolutions —
/// is left as it was. The model's metadata records <c>clipgen.precision = int8</c> and how (<c>clipgen.quantization</c>).
/// </summary>
public static class OnnxQuantizer
{
    /// <summary>Metadata key: <c>float32</c> or <c>int8</c> (absent in float exports).</summary>
    public const string MetaPrecision = "clipgen.precision";

    /// <summary>Metadata key: the quantization scheme as <c>key=value</c> pairs separated by <c>;</c>.</summary>
    public const string MetaQuantization = "clipgen.quantization";

    const string MsDomain = "com.microsoft";

    /// <summary>Quantizes a serialised model (initializers inline); returns the new model's bytes.</summary>
    public static byte[] Quantize(byte[] model, OnnxQuantizationOptions? options = null) =>
        Quantize(model, options, out _);

    /// <summary>As <see cref="Quantize(byte[], OnnxQuantizationOptions?)"/>, also reporting which weights were quantized.</summary>
    public static byte[] Quantize(byte[] model, OnnxQuantizationOptions? options, out OnnxQuantizationReport report)
    {
        var m = ModelProto.Parser.ParseFrom(model);
        report = Apply(m, options ?? new OnnxQuantizationOptions());
        return m.ToByteArray();
    }

    /// <summary>Rewrites <paramref name="model"/> in place.</summary>
    internal static OnnxQuantizationReport Apply(ModelProto model, OnnxQuantizationOptions options)
    {
        if (model.MetadataProps.Any(p => p.Key == MetaPrecision && p.Value == "int8"))
            throw new InvalidOperationException("the model is already quantized (clipgen.precision = int8)");
        var g = model.Graph;
        var initializers = g.Initializer.ToDictionary(t => t.Name, StringComparer.Ordinal);
        var producers = new Dictionary<string, NodeProto>(StringComparer.Ordinal);
        foreach (var n in g.Node)
            foreach (var o in n.Output)
                if (o.Length > 0) producers[o] = n;
        var consumers = new Dictionary<string, List<NodeProto>>(StringComparer.Ordinal);
        foreach (var n in g.Node)
            foreach (var i in n.Input)
                if (i.Length > 0)
                {
                    if (!consumers.TryGetValue(i, out var list)) consumers[i] = list = [];
                    list.Add(n);
                }
        var graphOutputs = g.Output.Select(o => o.Name).ToHashSet(StringComparer.Ordinal);
        var names = new HashSet<string>(g.Node.SelectMany(n => n.Output).Concat(g.Initializer.Select(t => t.Name)).Concat(g.Input.Select(i => i.Name)), StringComparer.Ordinal);

        var quantized = new List<string>();
        var keptFloat = new List<string>();
        var replaced = new HashSet<NodeProto>(ReferenceEqualityComparer.Instance);
        var newNodes = new Dictionary<NodeProto, List<NodeProto>>(ReferenceEqualityComparer.Instance); // inserted in place of a node
        var orphanCandidates = new HashSet<string>(StringComparer.Ordinal);
        var sharedActivation = new Dictionary<string, (string Q, string Scale, string ZeroPoint)>(StringComparer.Ordinal);

        foreach (var mm in g.Node.ToList())
        {
            if (mm.OpType != "MatMul" || mm.Domain.Length != 0 || mm.Input.Count != 2) continue;
            if (ResolveWeight(mm.Input[1], initializers, producers) is not { } weight) continue;
            if (Matches(weight.Name, options.KeepFloat))
            {
                keptFloat.Add(weight.Name);
                continue;
            }
            long k = weight.Rows, n = weight.Cols;

            // A following Add of a constant [N] bias folds into the quantized op.
            string output = mm.Output[0];
            string? bias = null;
            NodeProto? add = null;
            if (!graphOutputs.Contains(output) && consumers.TryGetValue(output, out var users) && users.Count == 1
                && users[0] is { OpType: "Add", Domain: "" } a && a.Input.Count == 2)
            {
                var other = a.Input[0] == output ? a.Input[1] : a.Input[0];
                if (a.Input[0] != a.Input[1] && initializers.TryGetValue(other, out var b)
                    && b.DataType == (int)OnnxElementType.Float && b.Dims.Count == 1 && b.Dims[0] == n)
                {
                    bias = other;
                    add = a;
                    output = a.Output[0];
                }
            }

            var q = QuantizeWeight(weight.Data, (int)k, (int)n, options.Weights);
            string qName = Unique(names, weight.Name + "_quantized");
            string sName = Unique(names, weight.Name + "_scale");
            g.Initializer.Add(Tensor(qName, options.Weights == OnnxInt8Weights.Uint8 ? OnnxElementType.Uint8 : OnnxElementType.Int8, [k, n], q.Values));
            g.Initializer.Add(Tensor(sName, OnnxElementType.Float, [n], MemoryMarshal.AsBytes(q.Scales.AsSpan())));
            string? zpName = null;
            if (options.Weights == OnnxInt8Weights.Uint8)
            {
                zpName = Unique(names, weight.Name + "_zero_point");
                var zp = new byte[n];
                zp.AsSpan().Fill(128);
                g.Initializer.Add(Tensor(zpName, OnnxElementType.Uint8, [n], zp));
            }

            var inserted = new List<NodeProto>();
            if (options.Operator == OnnxInt8Operator.DynamicQuantizeMatMul)
            {
                var node = Node("DynamicQuantizeMatMul", mm.Name + "_quant", MsDomain, [mm.Input[0], qName, sName, zpName ?? "", bias ?? ""], [output]);
                while (node.Input[^1].Length == 0) node.Input.RemoveAt(node.Input.Count - 1);
                inserted.Add(node);
            }
            else
            {
                var x = mm.Input[0];
                if (!sharedActivation.TryGetValue(x, out var act))
                {
                    act = (Unique(names, x + "_quantized"), Unique(names, x + "_scale"), Unique(names, x + "_zero_point"));
                    inserted.Add(Node("DynamicQuantizeLinear", mm.Name + "_dql", "", [x], [act.Q, act.Scale, act.ZeroPoint]));
                    sharedActivation[x] = act;
                }
                var acc = Unique(names, mm.Name + "_int32");
                var accF = Unique(names, mm.Name + "_int32_float");
                var scale = Unique(names, mm.Name + "_scale");
                var y = bias is null ? output : Unique(names, mm.Name + "_scaled");
                inserted.Add(Node("MatMulInteger", mm.Name + "_int", "", zpName is null ? [act.Q, qName, act.ZeroPoint] : [act.Q, qName, act.ZeroPoint, zpName], [acc]));
                var cast = Node("Cast", mm.Name + "_cast", "", [acc], [accF]);
                cast.Attribute.Add(new AttributeProto { Name = "to", Type = AttributeProto.Types.AttributeType.Int, I = (long)OnnxElementType.Float });
                inserted.Add(cast);
                inserted.Add(Node("Mul", mm.Name + "_scales", "", [act.Scale, sName], [scale]));
                inserted.Add(Node("Mul", mm.Name + "_rescale", "", [accF, scale], [y]));
                if (bias is not null) inserted.Add(Node("Add", mm.Name + "_bias", "", [y, bias], [output]));
            }
            newNodes[mm] = inserted;
            replaced.Add(mm);
            if (add is not null) replaced.Add(add);
            orphanCandidates.Add(mm.Input[1]);
            quantized.Add(weight.Name);
        }

        // Rebuild the node list in order, the new nodes where their MatMul was (the folded Add's inputs are all defined by then).
        var nodes = new List<NodeProto>(g.Node.Count);
        foreach (var node in g.Node)
        {
            if (newNodes.TryGetValue(node, out var ins)) nodes.AddRange(ins);
            else if (!replaced.Contains(node)) nodes.Add(node);
        }
        RemoveDead(nodes, graphOutputs, orphanCandidates, producers);
        g.Node.Clear();
        g.Node.Add(nodes);
        var used = nodes.SelectMany(x => x.Input).ToHashSet(StringComparer.Ordinal);
        foreach (var t in g.Initializer.ToList())
            if (orphanCandidates.Contains(t.Name) && !used.Contains(t.Name) && !graphOutputs.Contains(t.Name))
                g.Initializer.Remove(t);

        if (quantized.Count > 0 && options.Operator == OnnxInt8Operator.DynamicQuantizeMatMul && model.OpsetImport.All(o => o.Domain != MsDomain))
            model.OpsetImport.Add(new OperatorSetIdProto { Domain = MsDomain, Version = 1 });
        SetMetadata(model, MetaPrecision, "int8");
        SetMetadata(model, MetaQuantization, Describe(options, quantized.Count, quantized.Count + keptFloat.Count, keptFloat));
        return new OnnxQuantizationReport(quantized, keptFloat);
    }

    /// <summary>The scheme as recorded in <see cref="MetaQuantization"/>.</summary>
    static string Describe(OnnxQuantizationOptions o, int quantized, int total, IReadOnlyList<string> keptFloat)
    {
        var inv = CultureInfo.InvariantCulture;
        var weights = o.Weights switch
        {
            OnnxInt8Weights.Int8ReducedRange => "int8 symmetric per-output-channel range 63",
            OnnxInt8Weights.Int8 => "int8 symmetric per-output-channel range 127",
            _ => "uint8 symmetric per-output-channel zero-point 128 range 127",
        };
        var op = o.Operator == OnnxInt8Operator.DynamicQuantizeMatMul ? "com.microsoft.DynamicQuantizeMatMul" : "DynamicQuantizeLinear+MatMulInteger";
        return $"method=dynamic;weights={weights};activations=uint8 asymmetric per-tensor at run time;op={op};" +
               $"matmuls={quantized.ToString(inv)}/{total.ToString(inv)};float={(keptFloat.Count == 0 ? "-" : string.Join(",", keptFloat))}";
    }

    static void SetMetadata(ModelProto m, string key, string value)
    {
        var entries = m.MetadataProps.Where(p => p.Key != key).Append(new StringStringEntryProto { Key = key, Value = value })
            .OrderBy(p => p.Key, StringComparer.Ordinal).ToList();
        m.MetadataProps.Clear();
        m.MetadataProps.Add(entries);
    }

    static bool Matches(string name, IReadOnlyList<string> patterns)
    {
        foreach (var p in patterns)
            if (name == p || name.EndsWith("." + p, StringComparison.Ordinal)) return true;
        return false;
    }

    /// <summary>A constant weight of a MatMul as a row-major [K, N] float array, or null when the input is not constant.</summary>
    sealed record Weight(string Name, long Rows, long Cols, float[] Data);

    static Weight? ResolveWeight(string input, Dictionary<string, TensorProto> initializers, Dictionary<string, NodeProto> producers)
    {
        bool transpose = false, cast = false;
        var name = input;
        while (!initializers.ContainsKey(name))
        {
            if (!producers.TryGetValue(name, out var p) || p.Domain.Length != 0 || p.Input.Count != 1) return null;
            if (p.OpType == "Transpose" && !transpose)
            {
                var perm = p.Attribute.FirstOrDefault(a => a.Name == "perm");
                if (perm is not null && !(perm.Ints.Count == 2 && perm.Ints[0] == 1 && perm.Ints[1] == 0)) return null;
                transpose = true;
            }
            else if (p.OpType == "Cast" && !cast && p.Attribute.FirstOrDefault(a => a.Name == "to")?.I == (long)OnnxElementType.Float) cast = true;
            else return null;
            name = p.Input[0];
        }
        var t = initializers[name];
        if (t.Dims.Count != 2) return null;
        if (t.DataLocation == TensorProto.Types.DataLocation.External)
            throw new InvalidOperationException($"weight '{name}' is stored as external data; quantize the model before its weights are moved out");
        var data = (OnnxElementType)t.DataType switch
        {
            OnnxElementType.Float => ReadFloats(t),
            OnnxElementType.Float16 when cast => ReadHalves(t),
            _ => null,
        };
        if (data is null) return null;
        long r = t.Dims[0], c = t.Dims[1];
        if (data.Length != r * c) throw new InvalidOperationException($"weight '{name}' has {data.Length} values for shape [{r}, {c}]");
        if (!transpose) return new Weight(name, r, c, data);
        var tr = new float[data.Length];
        for (long i = 0; i < r; i++)
            for (long j = 0; j < c; j++)
                tr[j * r + i] = data[i * c + j];
        return new Weight(name, c, r, tr);
    }

    static float[] ReadFloats(TensorProto t) =>
        t.RawData.Length > 0 ? MemoryMarshal.Cast<byte, float>(t.RawData.Span).ToArray() : t.FloatData.ToArray();

    static float[] ReadHalves(TensorProto t)
    {
        // float16 lives in raw_data, or (per the ONNX spec) as its bit patterns in int32_data.
        if (t.RawData.Length > 0)
        {
            var raw = t.RawData.Span;
            var r = new float[raw.Length / 2];
            for (int i = 0; i < r.Length; i++) r[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(raw[(2 * i)..]);
            return r;
        }
        return t.Int32Data.Select(bits => (float)BitConverter.UInt16BitsToHalf((ushort)bits)).ToArray();
    }

    /// <summary>Per-column symmetric quantization of a row-major [K, N] matrix.</summary>
    internal static (byte[] Values, float[] Scales) QuantizeWeight(ReadOnlySpan<float> w, int k, int n, OnnxInt8Weights format)
    {
        int qmax = format == OnnxInt8Weights.Int8ReducedRange ? 63 : 127;
        var scales = new float[n];
        var maxAbs = new float[n];
        for (int i = 0; i < k; i++)
        {
            var row = w.Slice(i * n, n);
            for (int j = 0; j < n; j++) maxAbs[j] = MathF.Max(maxAbs[j], MathF.Abs(row[j]));
        }
        for (int j = 0; j < n; j++)
        {
            if (!float.IsFinite(maxAbs[j])) throw new InvalidOperationException($"weight column {j} is not finite");
            scales[j] = maxAbs[j] > 0 ? maxAbs[j] / qmax : 1f;
        }
        var q = new byte[(long)k * n];
        int offset = format == OnnxInt8Weights.Uint8 ? 128 : 0;
        for (int i = 0; i < k; i++)
            for (int j = 0; j < n; j++)
            {
                int v = (int)MathF.Round(w[i * n + j] / scales[j], MidpointRounding.ToEven);
                q[(long)i * n + j] = unchecked((byte)(Math.Clamp(v, -qmax, qmax) + offset));
            }
        return (q, scales);
    }

    static TensorProto Tensor(string name, OnnxElementType type, long[] dims, ReadOnlySpan<byte> raw)
    {
        var t = new TensorProto { Name = name, DataType = (int)type, RawData = ByteString.CopyFrom(raw) };
        t.Dims.Add(dims);
        return t;
    }

    static NodeProto Node(string op, string name, string domain, IEnumerable<string> inputs, IEnumerable<string> outputs)
    {
        var n = new NodeProto { OpType = op, Name = name, Domain = domain };
        n.Input.Add(inputs);
        n.Output.Add(outputs);
        return n;
    }

    static string Unique(HashSet<string> names, string name)
    {
        if (names.Add(name)) return name;
        for (int i = 1; ; i++)
        {
            var c = name + "_" + i.ToString(CultureInfo.InvariantCulture);
            if (names.Add(c)) return c;
        }
    }

    /// <summary>Removes the nodes (Transpose, Cast) that only fed replaced weights.</summary>
    static void RemoveDead(List<NodeProto> nodes, HashSet<string> graphOutputs, HashSet<string> weightInputs, Dictionary<string, NodeProto> producers)
    {
        var pending = new Queue<string>(weightInputs);
        while (pending.Count > 0)
        {
            var value = pending.Dequeue();
            if (!producers.TryGetValue(value, out var p) || graphOutputs.Contains(value)) continue;
            if (!nodes.Contains(p) || nodes.Any(x => x.Input.Contains(value))) continue;
            if (p.Output.Any(o => graphOutputs.Contains(o) || nodes.Any(x => x.Input.Contains(o)))) continue;
            nodes.Remove(p);
            foreach (var i in p.Input)
            {
                weightInputs.Add(i);
                pending.Enqueue(i);
            }
        }
    }
}
