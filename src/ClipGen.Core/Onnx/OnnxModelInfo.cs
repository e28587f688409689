using System.Globalization;
using System.Text;
using Onnx;

namespace ClipGen.Onnx;

/// <summary>Read-only facts about a saved ONNX model (parsed with OnnxSharp's protobuf types).</summary>
public sealed class OnnxModelInfo
{
    OnnxModelInfo(ModelProto m)
    {
        IrVersion = m.IrVersion;
        Opsets = m.OpsetImport.ToDictionary(o => o.Domain, o => o.Version);
        Metadata = m.MetadataProps.ToDictionary(p => p.Key, p => p.Value);
        Initializers = m.Graph.Initializer.Select(t => new OnnxInitializerInfo(
            t.Name, (OnnxElementType)t.DataType, [.. t.Dims],
            t.DataLocation == TensorProto.Types.DataLocation.External,
            t.ExternalData.ToDictionary(e => e.Key, e => e.Value))).ToList();
        Inputs = m.Graph.Input.Select(i => i.Name).ToList();
        Outputs = m.Graph.Output.Select(i => i.Name).ToList();
        InputInfos = m.Graph.Input.Select(Describe).ToList();
        OutputInfos = m.Graph.Output.Select(Describe).ToList();
        OpTypes = m.Graph.Node.Select(n => n.Domain.Length == 0 ? n.OpType : n.Domain + ":" + n.OpType).ToList();
    }

    public static OnnxModelInfo Load(string path)
    {
        using var fs = File.OpenRead(path);
        return new(ModelProto.Parser.ParseFrom(fs));
    }

    public static OnnxModelInfo Parse(byte[] model) => new(ModelProto.Parser.ParseFrom(model));

    public long IrVersion { get; }
    public IReadOnlyDictionary<string, long> Opsets { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }
    public IReadOnlyList<OnnxInitializerInfo> Initializers { get; }
    public IReadOnlyList<string> Inputs { get; }
    public IReadOnlyList<string> Outputs { get; }

    /// <summary>Node op types in graph order (contrib ops as <c>domain:OpType</c>).</summary>
    public IReadOnlyList<string> OpTypes { get; }

    /// <summary>How often each op type occurs.</summary>
    public IReadOnlyDictionary<string, int> OpHistogram() =>
        OpTypes.GroupBy(t => t).OrderBy(g => g.Key, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count());

    public static IReadOnlyDictionary<string, int> OpHistogram(string path) => Load(path).OpHistogram();

    /// <summary>Graph inputs with element type and dims (fixed sizes or dynamic axis names).</summary>
    public IReadOnlyList<OnnxValueInfo> InputInfos { get; }

    /// <summary>Graph outputs with element type and dims.</summary>
    public IReadOnlyList<OnnxValueInfo> OutputInfos { get; }

    static OnnxValueInfo Describe(ValueInfoProto v)
    {
        var t = v.Type?.TensorType;
        var dims = t?.Shape?.Dim.Select(d => d.DimParam.Length > 0 ? d.DimParam : d.DimValue.ToString(CultureInfo.InvariantCulture)).ToList() ?? [];
        return new OnnxValueInfo(v.Name, (OnnxElementType)(t?.ElemType ?? 0), dims);
    }

    /// <summary>
    /// A readable, stable summary: opsets, inputs and outputs with dims, the op histogram, every initializer with its shape
    /// and type, and the metadata (multi-line values indented). Used by the graph baselines under tests/…/Onnx/Baselines.
    /// </summary>
    public string Summary()
    {
        var inv = CultureInfo.InvariantCulture;
        var w = new StringBuilder();
        w.Append("ir_version: ").Append(IrVersion.ToString(inv)).Append('\n');
        w.Append("opsets: ").Append(string.Join(", ", Opsets.OrderBy(o => o.Key, StringComparer.Ordinal).Select(o => (o.Key.Length == 0 ? "ai.onnx" : o.Key) + " " + o.Value.ToString(inv)))).Append('\n');
        w.Append("\ninputs:\n");
        foreach (var i in InputInfos) w.Append("  ").Append(i).Append('\n');
        w.Append("\noutputs:\n");
        foreach (var o in OutputInfos) w.Append("  ").Append(o).Append('\n');
        var hist = OpHistogram();
        w.Append("\nops (").Append(OpTypes.Count.ToString(inv)).Append(" nodes):\n");
        foreach (var (op, n) in hist) w.Append("  ").Append(op).Append(' ').Append(n.ToString(inv)).Append('\n');
        long total = Initializers.Sum(i => i.Dims.Aggregate(1L, (a, b) => a * b));
        w.Append("\ninitializers (").Append(Initializers.Count.ToString(inv)).Append(", ").Append(total.ToString(inv)).Append(" elements):\n");
        foreach (var i in Initializers)
            w.Append("  ").Append(i.Name).Append(" [").Append(string.Join(",", i.Dims.Select(d => d.ToString(inv)))).Append("] ").Append(i.Type.ToString().ToLowerInvariant()).Append('\n');
        w.Append("\nmetadata:\n");
        foreach (var (k, v) in Metadata.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            if (!v.Contains('\n')) { w.Append("  ").Append(k).Append(" = ").Append(v).Append('\n'); continue; }
            w.Append("  ").Append(k).Append(" =\n");
            foreach (var line in v.TrimEnd('\n').Split('\n')) w.Append("    | ").Append(line).Append('\n');
        }
        return w.ToString();
    }
}

/// <summary>A graph input or output: name, element type and dims.</summary>
public sealed record OnnxValueInfo(string Name, OnnxElementType Type, IReadOnlyList<string> Dims)
{
    public override string ToString() => Name + " " + Type.ToString().ToLowerInvariant() + " [" + string.Join(",", Dims) + "]";
}

/// <summary>One initializer: name, type, shape and where its data lives.</summary>
public sealed record OnnxInitializerInfo(string Name, OnnxElementType Type, long[] Dims, bool IsExternal, IReadOnlyDictionary<string, string> ExternalData);
