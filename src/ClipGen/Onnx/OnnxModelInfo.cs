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
}

/// <summary>One initializer: name, type, shape and where its data lives.</summary>
public sealed record OnnxInitializerInfo(string Name, OnnxElementType Type, long[] Dims, bool IsExternal, IReadOnlyDictionary<string, string> ExternalData);
