using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using Google.Protobuf;
using Onnx;

namespace ClipGen.Onnx;

/// <summary>How float weights are stored in the model file.</summary>
public enum OnnxWeightStorage
{
    /// <summary>float32 initializers (default, exact).</summary>
    Float32,

    /// <summary>
    /// float16 initializers, each followed by one <c>Cast</c> to float32 at its use; all arithmetic stays float32
    /// (LayerNorm, softmax, the residual stream), so only the weights are rounded. Halves the file.
    /// </summary>
    Float16,
}

/// <summary>Options fixed when a builder is created.</summary>
public sealed record OnnxBuilderOptions
{
    /// <summary>The default-domain opset. At least 17 (LayerNormalization); ops whose form changed later (ReduceMean/ReduceL2 axes, Split) follow it.</summary>
    public int Opset { get; init; } = OnnxGraphBuilder.DefaultOpset;

    /// <summary>How float weights from <see cref="OnnxGraphBuilder.Parameter"/> are stored.</summary>
    public OnnxWeightStorage WeightStorage { get; init; } = OnnxWeightStorage.Float32;

    /// <summary>The graph's name.</summary>
    public string GraphName { get; init; } = "clipgen";

    /// <summary>The model's producer_name.</summary>
    public string ProducerName { get; init; } = "ClipGen";

    /// <summary>
    /// Record weights by shape only, never reading their data: <see cref="OnnxGraphBuilder.Save"/> writes them as zeros in a sparse
    /// external-data file, and <see cref="OnnxGraphBuilder.ToBytes"/> refuses. For checking the structure of models too big to
    /// materialise (the weight source then returns shapes with no data).
    /// </summary>
    public bool PlaceholderWeights { get; init; }

    /// <summary>
    /// When set, the saved or serialised model is quantized to int8 by <see cref="OnnxQuantizer"/> (the builder's own graph
    /// stays float32). Not with <see cref="PlaceholderWeights"/>, which have no values to quantize.
    /// </summary>
    public OnnxQuantizationOptions? Quantization { get; init; }

    /// <summary>The model's producer_version.</summary>
    public string ProducerVersion { get; init; } = typeof(OnnxGraphBuilder).Assembly.GetName().Version?.ToString() ?? "0";
}

/// <summary>When <see cref="OnnxGraphBuilder.Save"/> moves initializers into a side file.</summary>
public enum OnnxExternalDataMode
{
    /// <summary>Only when the model would not fit a single protobuf message (2 GB).</summary>
    Auto,

    /// <summary>Always (used by the tests on tiny models).</summary>
    Always,

    /// <summary>Never; saving a model over 2 GB then fails.</summary>
    Never,
}

/// <summary>Options for <see cref="OnnxGraphBuilder.Save"/>.</summary>
public sealed record OnnxSaveOptions
{
    public OnnxExternalDataMode ExternalData { get; init; } = OnnxExternalDataMode.Auto;

    /// <summary>Initializers of at least this many bytes go to the side file; smaller ones stay inline.</summary>
    public long ExternalDataThreshold { get; init; } = 1024;

    /// <summary>Offsets in the side file are multiples of this (page alignment lets runtimes map the file).</summary>
    public int ExternalDataAlignment { get; init; } = 4096;

    /// <summary>The side file's name, relative to the model; default <c>{model file name}.data</c>.</summary>
    public string? ExternalDataFileName { get; init; }
}

/// <summary>
/// Builds an ONNX model in the style of onnxscript's builder: ops return <see cref="OnnxValue"/> handles, a module
/// scope stack (<see cref="Scope"/>) makes initializer names equal the PyTorch state_dict keys, equal constants are
/// emitted once, and the opset is explicit. The ONNX protobuf types (OnnxSharp) stay behind this class.
/// </summary>
public sealed partial class OnnxGraphBuilder
{
    public const int DefaultOpset = 17;
    public const int MinOpset = 17;

    /// <summary>Protobuf cannot serialise one message of 2 GB or more; Auto switches to external data below this.</summary>
    const long ProtobufLimit = int.MaxValue - (64L << 20);

    readonly ModelProto _model;
    readonly GraphProto _graph;
    readonly List<string> _scopes = [];
    readonly Dictionary<string, OnnxValue> _constants = new(StringComparer.Ordinal);
    readonly Dictionary<string, OnnxValue> _parameters = new(StringComparer.Ordinal);
    readonly HashSet<string> _names = new(StringComparer.Ordinal);
    readonly Dictionary<string, string> _metadata = new(StringComparer.Ordinal);
    readonly HashSet<string> _placeholders = new(StringComparer.Ordinal);
    int _nodeCounter;

    public OnnxGraphBuilder(OnnxBuilderOptions? options = null, OnnxWeightSource? weights = null)
    {
        Options = options ?? new OnnxBuilderOptions();
        Weights = weights;
        if (Options.Opset < MinOpset)
            throw new ArgumentOutOfRangeException(nameof(options), Options.Opset, $"opset must be at least {MinOpset} (LayerNormalization)");
        if (Options.PlaceholderWeights && Options.Quantization is not null)
            throw new ArgumentException("placeholder weights cannot be quantized (they have no values)", nameof(options));
        _graph = new GraphProto { Name = Options.GraphName };
        _model = new ModelProto
        {
            IrVersion = IrVersionFor(Options.Opset),
            ProducerName = Options.ProducerName,
            ProducerVersion = Options.ProducerVersion,
            Graph = _graph,
        };
        _model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Options.Opset });
    }

    public OnnxBuilderOptions Options { get; }

    public int Opset => Options.Opset;

    /// <summary>The dotted module path of the current scope ("" at the root), e.g. <c>visual.transformer.resblocks.0</c>.</summary>
    public string CurrentScope => string.Join('.', _scopes);

    /// <summary>Model metadata (<c>metadata_props</c>); written when the model is serialised.</summary>
    public IDictionary<string, string> Metadata => _metadata;

    /// <summary>Names of all initializers so far, in creation order.</summary>
    public IReadOnlyList<string> InitializerNames => _graph.Initializer.Select(t => t.Name).ToList();

    /// <summary>The op types of all nodes so far, in order.</summary>
    public IReadOnlyList<string> NodeOpTypes => _graph.Node.Select(n => n.OpType).ToList();

    /// <summary>
    /// Enters a module scope: names created inside are prefixed with it (joined by '.'), like a PyTorch submodule.
    /// Dispose to leave; scopes must be left in reverse order.
    /// </summary>
    public IDisposable Scope(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        _scopes.Add(name);
        return new ScopeToken(this, _scopes.Count);
    }

    sealed class ScopeToken(OnnxGraphBuilder owner, int depth) : IDisposable
    {
        bool _done;

        public void Dispose()
        {
            if (_done) return;
            if (owner._scopes.Count != depth)
                throw new InvalidOperationException($"scope '{owner.CurrentScope}' left out of order");
            owner._scopes.RemoveAt(depth - 1);
            _done = true;
        }
    }

    /// <summary>The full (scoped) name of a local name: <c>CurrentScope + "." + local</c>.</summary>
    public string FullName(string local) => _scopes.Count == 0 ? local : CurrentScope + "." + local;

    // ---- graph inputs and outputs ----

    /// <summary>Declares a graph input. Dims are fixed sizes or named dynamic axes: <c>Input("pixel_values", Float, "batch", 3, 224, 224)</c>.</summary>
    public OnnxValue Input(string name, OnnxElementType type, params OnnxDim[] dims)
    {
        Claim(name);
        _graph.Input.Add(ValueInfo(name, type, dims));
        return new OnnxValue(this, name);
    }

    /// <summary>Declares <paramref name="value"/> as a graph output called <paramref name="name"/> (an Identity node renames it when needed).</summary>
    public OnnxValue Output(OnnxValue value, string name, OnnxElementType type, params OnnxDim[] dims)
    {
        Own(value);
        if (value.Name != name)
        {
            Claim(name);
            AddNode("Identity", [value], [name], []);
        }
        _graph.Output.Add(ValueInfo(name, type, dims));
        return new OnnxValue(this, name);
    }

    static ValueInfoProto ValueInfo(string name, OnnxElementType type, OnnxDim[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
        {
            var dim = new TensorShapeProto.Types.Dimension();
            if (d.Param is { } p) dim.DimParam = p;
            else dim.DimValue = d.Value ?? 0;
            shape.Dim.Add(dim);
        }
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } },
        };
    }

    // ---- initializers ----

    /// <summary>Where <see cref="Parameter"/> reads weights: a state_dict lookup by full key (null: the graph has no weights).</summary>
    public OnnxWeightSource? Weights { get; }

    /// <summary>
    /// The weight <c>FullName(local)</c>, read once through <see cref="Weights"/> and stored as an initializer of exactly that
    /// name. Float weights follow <see cref="OnnxBuilderOptions.WeightStorage"/>; the returned value is always float32 for float
    /// weights. <paramref name="expectedShape"/>, when given, is checked, so a plan that does not match the weights fails at export
    /// with the key named.
    /// </summary>
    public OnnxValue Parameter(string local, long[]? expectedShape = null)
    {
        var key = FullName(local);
        if (_parameters.TryGetValue(key, out var cached)) return cached;
        if (Weights is null) throw new InvalidOperationException($"the graph reads weight '{key}' but the builder was given no weights");
        var t = Weights(key);
        if (t.Shape is null) throw new KeyNotFoundException($"weight '{key}' not found");
        if (expectedShape is not null && !t.Shape.AsSpan().SequenceEqual(expectedShape))
            throw new ArgumentException($"weight '{key}' has shape [{string.Join(", ", t.Shape)}], but the plan implies [{string.Join(", ", expectedShape)}]");
        var value = AddWeightInitializer(key, t);
        _parameters[key] = value;
        return value;
    }

    OnnxValue AddWeightInitializer(string name, OnnxWeight t)
    {
        if (Options.PlaceholderWeights) return AddPlaceholder(name, t);
        long count = t.Shape.Aggregate(1L, (a, b) => a * b);
        if (t.Data.Length != count * ElementSize((int)t.Type))
            throw new ArgumentException($"weight '{name}' has {t.Data.Length} bytes, not the {count * ElementSize((int)t.Type)} its shape [{string.Join(", ", t.Shape)}] needs");
        switch (t.Type)
        {
            case OnnxElementType.Float:
                if (Options.WeightStorage == OnnxWeightStorage.Float16)
                {
                    Claim(name);
                    _graph.Initializer.Add(MakeTensor(name, OnnxElementType.Float16, t.Shape, HalfBytes(MemoryMarshal.Cast<byte, float>(t.Data.Span))));
                    return Cast(new OnnxValue(this, name), OnnxElementType.Float);
                }
                return AddInitializer(name, OnnxElementType.Float, t.Shape, t.Data.Span);
            case OnnxElementType.Int64:
                return AddInitializer(name, OnnxElementType.Int64, t.Shape, t.Data.Span);
            case OnnxElementType.Float16:
                Claim(name);
                _graph.Initializer.Add(MakeTensor(name, OnnxElementType.Float16, t.Shape, t.Data.Span));
                return Cast(new OnnxValue(this, name), OnnxElementType.Float);
            default:
                throw new NotSupportedException($"weight '{name}' has element type {t.Type}; float32, float16 and int64 are supported");
        }
    }

    OnnxValue AddPlaceholder(string name, OnnxWeight t)
    {
        var type = t.Type switch
        {
            OnnxElementType.Int64 => OnnxElementType.Int64,
            OnnxElementType.Float or OnnxElementType.Float16 when Options.WeightStorage == OnnxWeightStorage.Float16 || t.Type == OnnxElementType.Float16 => OnnxElementType.Float16,
            OnnxElementType.Float => OnnxElementType.Float,
            _ => throw new NotSupportedException($"weight '{name}' has element type {t.Type}; float32, float16 and int64 are supported"),
        };
        Claim(name);
        var proto = new TensorProto { Name = name, DataType = (int)type };
        foreach (var d in t.Shape) proto.Dims.Add(d);
        _graph.Initializer.Add(proto);
        _placeholders.Add(name);
        var v = new OnnxValue(this, name);
        return type == OnnxElementType.Float16 ? Cast(v, OnnxElementType.Float) : v;
    }

    static long ElementSize(int type) => (OnnxElementType)type switch
    {
        OnnxElementType.Float16 => 2,
        OnnxElementType.Int64 => 8,
        _ => 4,
    };

    /// <summary>True when the graph holds placeholder (shape-only) weights.</summary>
    public bool HasPlaceholders => _placeholders.Count > 0;

    /// <summary>Adds an initializer with a full (unscoped) name and little-endian raw bytes.</summary>
    public OnnxValue AddInitializer(string name, OnnxElementType type, ReadOnlySpan<long> dims, ReadOnlySpan<byte> littleEndianData)
    {
        Claim(name);
        _graph.Initializer.Add(MakeTensor(name, type, dims, littleEndianData));
        return new OnnxValue(this, name);
    }

    static TensorProto MakeTensor(string name, OnnxElementType type, ReadOnlySpan<long> dims, ReadOnlySpan<byte> raw)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("ONNX raw_data is little-endian");
        var t = new TensorProto { Name = name, DataType = (int)type, RawData = ByteString.CopyFrom(raw) };
        foreach (var d in dims) t.Dims.Add(d);
        return t;
    }

    static byte[] HalfBytes(ReadOnlySpan<float> data)
    {
        var bytes = new byte[data.Length * 2];
        for (int i = 0; i < data.Length; i++)
            BinaryPrimitives.WriteHalfLittleEndian(bytes.AsSpan(i * 2), (Half)data[i]);
        return bytes;
    }

    // ---- constants (cached: one Constant node per distinct value) ----

    /// <summary>A float32 scalar constant.</summary>
    public OnnxValue Const(float value) => Const(OnnxElementType.Float, [], MemoryMarshal.AsBytes(new[] { value }.AsSpan()));

    /// <summary>An int64 scalar constant.</summary>
    public OnnxValue Const(long value) => Const(OnnxElementType.Int64, [], MemoryMarshal.AsBytes(new[] { value }.AsSpan()));

    /// <summary>A 1-D int64 constant (shapes, axes, indices).</summary>
    public OnnxValue Const(long[] values) => Const(OnnxElementType.Int64, [values.Length], MemoryMarshal.AsBytes(values.AsSpan()));

    /// <summary>A float32 constant of any shape.</summary>
    public OnnxValue Const(float[] values, params long[] dims)
    {
        if (dims.Aggregate(1L, (a, b) => a * b) != values.Length) throw new ArgumentException("dims do not match the data length");
        return Const(OnnxElementType.Float, dims, MemoryMarshal.AsBytes(values.AsSpan()));
    }

    /// <summary>
    /// A constant, emitted as a <c>Constant</c> node (so the initializer list holds exactly the checkpoint's weights).
    /// The same type, shape and bytes give the same value: each distinct constant appears once in the graph.
    /// </summary>
    public OnnxValue Const(OnnxElementType type, long[] dims, ReadOnlySpan<byte> littleEndianData)
    {
        var key = string.Create(CultureInfo.InvariantCulture, $"{(int)type}|{string.Join(',', dims)}|{Convert.ToHexString(littleEndianData)}");
        if (_constants.TryGetValue(key, out var v)) return v;
        var name = Unique("const_" + _constants.Count.ToString(CultureInfo.InvariantCulture));
        var tensor = MakeTensor(name, type, dims, littleEndianData);
        AddNode("Constant", [], [name], [OnnxAttribute.Tensor("value", tensor)], nodeName: name);
        v = new OnnxValue(this, name);
        _constants[key] = v;
        return v;
    }

    /// <summary>The number of distinct constants emitted so far.</summary>
    public int ConstantCount => _constants.Count;

    // ---- nodes ----

    /// <summary>
    /// Emits any default-domain op (or <paramref name="domain"/>) and returns its outputs.
    /// A null input is an omitted optional input.
    /// </summary>
    public OnnxValue[] Op(string opType, IReadOnlyList<OnnxValue?> inputs, int outputs = 1, IReadOnlyList<OnnxAttribute>? attributes = null, string domain = "")
    {
        var nodeName = NextNodeName(opType);
        var outNames = new string[outputs];
        for (int i = 0; i < outputs; i++) outNames[i] = Unique(nodeName + "_output_" + i.ToString(CultureInfo.InvariantCulture));
        AddNode(opType, inputs, outNames, attributes ?? [], nodeName, domain);
        return outNames.Select(n => new OnnxValue(this, n)).ToArray();
    }

    /// <summary>Emits a single-output op.</summary>
    public OnnxValue Op1(string opType, IReadOnlyList<OnnxValue?> inputs, params OnnxAttribute[] attributes) =>
        Op(opType, inputs, 1, attributes)[0];

    void AddNode(string opType, IReadOnlyList<OnnxValue?> inputs, IReadOnlyList<string> outputs, IReadOnlyList<OnnxAttribute> attributes, string? nodeName = null, string domain = "")
    {
        var node = new NodeProto { OpType = opType, Name = nodeName ?? NextNodeName(opType), Domain = domain };
        // Trailing omitted inputs are dropped; inner ones become "".
        int last = inputs.Count - 1;
        while (last >= 0 && inputs[last] is null) last--;
        for (int i = 0; i <= last; i++)
        {
            if (inputs[i] is { } v) { Own(v); node.Input.Add(v.Name); }
            else node.Input.Add("");
        }
        node.Output.Add(outputs);
        foreach (var a in attributes) node.Attribute.Add(a.Proto.Clone());
        _graph.Node.Add(node);
        if (domain.Length > 0 && _model.OpsetImport.All(o => o.Domain != domain))
            _model.OpsetImport.Add(new OperatorSetIdProto { Domain = domain, Version = 1 });
    }

    string NextNodeName(string opType)
    {
        var scope = _scopes.Count == 0 ? "" : "/" + string.Join('/', _scopes);
        return Unique(scope + "/" + opType + "_" + (_nodeCounter++).ToString(CultureInfo.InvariantCulture));
    }

    string Unique(string name)
    {
        if (_names.Add(name)) return name;
        for (int i = 1; ; i++)
        {
            var n = name + "_" + i.ToString(CultureInfo.InvariantCulture);
            if (_names.Add(n)) return n;
        }
    }

    void Claim(string name)
    {
        if (!_names.Add(name)) throw new InvalidOperationException($"the name '{name}' is already used in this graph");
    }

    void Own(OnnxValue v)
    {
        if (!ReferenceEquals(v.Builder, this)) throw new ArgumentException($"value '{v.Name}' belongs to another builder");
    }

    // ---- serialisation ----

    static long IrVersionFor(int opset) => opset switch
    {
        <= 18 => 8,
        <= 20 => 9,
        <= 22 => 10,
        _ => 11,
    };

    ModelProto Snapshot()
    {
        var m = _model.Clone(); // ByteStrings are immutable and shared, so this is cheap
        m.MetadataProps.Clear();
        foreach (var (k, v) in _metadata.OrderBy(p => p.Key, StringComparer.Ordinal))
            m.MetadataProps.Add(new StringStringEntryProto { Key = k, Value = v });
        if (Options.Quantization is { } q) OnnxQuantizer.Apply(m, q);
        return m;
    }

    long InitializerBytes => _graph.Initializer.Sum(t => _placeholders.Contains(t.Name) ? t.Dims.Aggregate(ElementSize(t.DataType), (a, d) => a * d) : t.RawData.Length);

    /// <summary>Bytes of all initializers (placeholders counted at their full size).</summary>
    public long WeightBytes => InitializerBytes;

    /// <summary>The serialised model with all initializers inline (fails over 2 GB; use <see cref="Save"/>).</summary>
    public byte[] ToBytes()
    {
        if (InitializerBytes >= ProtobufLimit)
            throw new InvalidOperationException("the model is over 2 GB; save it to a file with external data instead");
        if (HasPlaceholders)
            throw new InvalidOperationException("the graph has placeholder weights, which exist only as external data; save it to a file");
        return Snapshot().ToByteArray();
    }

    /// <summary>
    /// Writes the model to <paramref name="path"/>. With external data (forced, or automatic over 2 GB) initializers of at least
    /// <see cref="OnnxSaveOptions.ExternalDataThreshold"/> bytes go to a side file next to it (default <c>{name}.data</c>)
    /// with <c>data_location = EXTERNAL</c> and <c>location</c>/<c>offset</c>/<c>length</c> entries. Returns the side file's path, or null.
    /// </summary>
    public string? Save(string path, OnnxSaveOptions? options = null)
    {
        options ??= new OnnxSaveOptions();
        var m = Snapshot();
        bool external = options.ExternalData switch
        {
            OnnxExternalDataMode.Always => true,
            OnnxExternalDataMode.Never => HasPlaceholders ? throw new InvalidOperationException("placeholder weights need external data") : false,
            _ => InitializerBytes >= ProtobufLimit || HasPlaceholders,
        };
        string? dataPath = null;
        if (external)
        {
            var fileName = options.ExternalDataFileName ?? Path.GetFileName(path) + ".data";
            dataPath = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, fileName);
            WriteExternalData(m.Graph, dataPath, fileName, options, _placeholders);
        }
        using var fs = File.Create(path);
        m.WriteTo(fs);
        return dataPath;
    }

    static void WriteExternalData(GraphProto g, string dataPath, string location, OnnxSaveOptions o, HashSet<string> placeholders)
    {
        using var fs = new FileStream(dataPath, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        long offset = 0;
        int align = Math.Max(1, o.ExternalDataAlignment);
        foreach (var t in g.Initializer)
        {
            bool placeholder = placeholders.Contains(t.Name);
            long length = placeholder ? t.Dims.Aggregate(ElementSize(t.DataType), (a, d) => a * d) : t.RawData.Length;
            if (!placeholder && (length < o.ExternalDataThreshold || length == 0)) continue;
            long pad = (align - offset % align) % align;
            offset += pad;
            if (placeholder) fs.Seek(offset + length, SeekOrigin.Begin);   // a hole: zeros that take no disk space
            else
            {
                fs.Seek(offset, SeekOrigin.Begin);
                fs.Write(t.RawData.Span);
            }
            t.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = location });
            t.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = offset.ToString(CultureInfo.InvariantCulture) });
            t.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = length.ToString(CultureInfo.InvariantCulture) });
            t.DataLocation = TensorProto.Types.DataLocation.External;
            offset += length;
            t.RawData = ByteString.Empty;
        }
        fs.SetLength(offset);
    }
}
