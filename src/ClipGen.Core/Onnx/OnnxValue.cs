namespace ClipGen.Onnx;

/// <summary>
/// A handle to one value in a graph under construction (a graph input, an initializer, a constant or a node output).
/// Ops on <see cref="OnnxGraphBuilder"/> take and return handles, never raw names; the arithmetic operators
/// emit Add/Sub/Mul/Div nodes into the owning builder.
/// </summary>
public sealed class OnnxValue
{
    internal OnnxValue(OnnxGraphBuilder builder, string name)
    {
        Builder = builder;
        Name = name;
    }

    /// <summary>The builder that owns this value; mixing values of two builders throws.</summary>
    public OnnxGraphBuilder Builder { get; }

    /// <summary>The value's name in the ONNX graph.</summary>
    public string Name { get; }

    public override string ToString() => Name;

    public static OnnxValue operator +(OnnxValue a, OnnxValue b) => a.Builder.Add(a, b);
    public static OnnxValue operator -(OnnxValue a, OnnxValue b) => a.Builder.Sub(a, b);
    public static OnnxValue operator *(OnnxValue a, OnnxValue b) => a.Builder.Mul(a, b);
    public static OnnxValue operator /(OnnxValue a, OnnxValue b) => a.Builder.Div(a, b);
    public static OnnxValue operator +(OnnxValue a, float b) => a.Builder.Add(a, a.Builder.Const(b));
    public static OnnxValue operator -(OnnxValue a, float b) => a.Builder.Sub(a, a.Builder.Const(b));
    public static OnnxValue operator *(OnnxValue a, float b) => a.Builder.Mul(a, a.Builder.Const(b));
    public static OnnxValue operator /(OnnxValue a, float b) => a.Builder.Div(a, a.Builder.Const(b));
    public static OnnxValue operator +(float a, OnnxValue b) => b.Builder.Add(b.Builder.Const(a), b);
    public static OnnxValue operator *(float a, OnnxValue b) => b.Builder.Mul(b.Builder.Const(a), b);
}

/// <summary>One dimension of a graph input or output: a fixed size or a named dynamic axis (e.g. "batch").</summary>
public readonly record struct OnnxDim
{
    OnnxDim(long? value, string? param) { Value = value; Param = param; }

    /// <summary>The fixed size, or null for a dynamic axis.</summary>
    public long? Value { get; }

    /// <summary>The dynamic axis name, or null for a fixed size.</summary>
    public string? Param { get; }

    public static OnnxDim Fixed(long value) =>
        value >= 0 ? new(value, null) : throw new ArgumentOutOfRangeException(nameof(value), value, "a fixed dimension is >= 0");

    public static OnnxDim Dynamic(string name) =>
        !string.IsNullOrWhiteSpace(name) ? new(null, name) : throw new ArgumentException("a dynamic axis needs a name", nameof(name));

    public static implicit operator OnnxDim(long value) => Fixed(value);
    public static implicit operator OnnxDim(int value) => Fixed(value);
    public static implicit operator OnnxDim(string name) => Dynamic(name);

    public override string ToString() => Param ?? Value!.Value.ToString(System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>ONNX tensor element types used by ClipGen (values equal <c>TensorProto.DataType</c>).</summary>
public enum OnnxElementType
{
    Float = 1,
    Uint8 = 2,
    Int8 = 3,
    Int32 = 6,
    Int64 = 7,
    Bool = 9,
    Float16 = 10,
    Double = 11,
}

/// <summary>A node attribute. Create with the factories; the protobuf form stays inside the builder.</summary>
public sealed class OnnxAttribute
{
    internal global::Onnx.AttributeProto Proto { get; }

    OnnxAttribute(global::Onnx.AttributeProto proto) => Proto = proto;

    public string Name => Proto.Name;

    public static OnnxAttribute Int(string name, long value) =>
        new(new global::Onnx.AttributeProto { Name = name, Type = global::Onnx.AttributeProto.Types.AttributeType.Int, I = value });

    public static OnnxAttribute Float(string name, float value) =>
        new(new global::Onnx.AttributeProto { Name = name, Type = global::Onnx.AttributeProto.Types.AttributeType.Float, F = value });

    public static OnnxAttribute String(string name, string value) =>
        new(new global::Onnx.AttributeProto { Name = name, Type = global::Onnx.AttributeProto.Types.AttributeType.String, S = Google.Protobuf.ByteString.CopyFromUtf8(value) });

    public static OnnxAttribute Ints(string name, params long[] values)
    {
        var a = new global::Onnx.AttributeProto { Name = name, Type = global::Onnx.AttributeProto.Types.AttributeType.Ints };
        a.Ints.Add(values);
        return new(a);
    }

    public static OnnxAttribute Floats(string name, params float[] values)
    {
        var a = new global::Onnx.AttributeProto { Name = name, Type = global::Onnx.AttributeProto.Types.AttributeType.Floats };
        a.Floats.Add(values);
        return new(a);
    }

    internal static OnnxAttribute Tensor(string name, global::Onnx.TensorProto value) =>
        new(new global::Onnx.AttributeProto { Name = name, Type = global::Onnx.AttributeProto.Types.AttributeType.Tensor, T = value });
}
