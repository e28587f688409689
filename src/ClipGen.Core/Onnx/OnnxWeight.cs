namespace ClipGen.Onnx;

/// <summary>
/// A weight as the graph builder stores it: shape, element type and little-endian bytes (float32, float16 or int64). For a
/// placeholder graph the data may be empty: only the shape and type are read.
/// </summary>
public readonly record struct OnnxWeight(long[] Shape, OnnxElementType Type, ReadOnlyMemory<byte> Data)
{
    /// <summary>A float32 weight from its values.</summary>
    public static OnnxWeight FromFloats(float[] values, params long[] shape) =>
        new(shape, OnnxElementType.Float, System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray());

    /// <summary>A weight known by its shape only (placeholder graphs).</summary>
    public static OnnxWeight ShapeOnly(long[] shape, OnnxElementType type = OnnxElementType.Float) => new(shape, type, ReadOnlyMemory<byte>.Empty);
}

/// <summary>Looks up a weight by its full state_dict key (for example <c>visual.conv1.weight</c>).</summary>
public delegate OnnxWeight OnnxWeightSource(string key);
