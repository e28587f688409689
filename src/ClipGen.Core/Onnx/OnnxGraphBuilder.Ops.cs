namespace ClipGen.Onnx;

// Typed wrappers for the default-domain ops ClipGen emits. Where an op's signature changed after opset 17
// (ReduceMean/ReduceL2 axes became an input in 18, Split gained num_outputs in 18), the builder follows its opset.
public sealed partial class OnnxGraphBuilder
{
    static OnnxAttribute[] NoAttrs => [];

    // ---- elementwise ----
    public OnnxValue Add(OnnxValue a, OnnxValue b) => Op1("Add", [a, b]);
    public OnnxValue Sub(OnnxValue a, OnnxValue b) => Op1("Sub", [a, b]);
    public OnnxValue Mul(OnnxValue a, OnnxValue b) => Op1("Mul", [a, b]);
    public OnnxValue Div(OnnxValue a, OnnxValue b) => Op1("Div", [a, b]);
    public OnnxValue Pow(OnnxValue a, OnnxValue b) => Op1("Pow", [a, b]);
    public OnnxValue Sqrt(OnnxValue x) => Op1("Sqrt", [x]);
    public OnnxValue Erf(OnnxValue x) => Op1("Erf", [x]);
    public OnnxValue Sigmoid(OnnxValue x) => Op1("Sigmoid", [x]);
    public OnnxValue Relu(OnnxValue x) => Op1("Relu", [x]);
    public OnnxValue Exp(OnnxValue x) => Op1("Exp", [x]);
    public OnnxValue Identity(OnnxValue x) => Op1("Identity", [x]);
    public OnnxValue Where(OnnxValue condition, OnnxValue x, OnnxValue y) => Op1("Where", [condition, x, y]);
    public OnnxValue Cast(OnnxValue x, OnnxElementType to) => Op1("Cast", [x], OnnxAttribute.Int("to", (int)to));

    // ---- linear algebra ----
    public OnnxValue MatMul(OnnxValue a, OnnxValue b) => Op1("MatMul", [a, b]);

    /// <summary>Y = alpha·op(A)·op(B) + beta·C (2-D only).</summary>
    public OnnxValue Gemm(OnnxValue a, OnnxValue b, OnnxValue? c = null, float alpha = 1f, float beta = 1f, bool transA = false, bool transB = false) =>
        Op1("Gemm", [a, b, c],
            OnnxAttribute.Float("alpha", alpha), OnnxAttribute.Float("beta", beta),
            OnnxAttribute.Int("transA", transA ? 1 : 0), OnnxAttribute.Int("transB", transB ? 1 : 0));

    // ---- shape ----
    /// <summary>Reshape to a constant shape (0 copies the input dim, -1 infers one dim), so dynamic axes survive.</summary>
    public OnnxValue Reshape(OnnxValue x, params long[] shape) => Op1("Reshape", [x, Const(shape)]);
    public OnnxValue Reshape(OnnxValue x, OnnxValue shape) => Op1("Reshape", [x, shape]);
    public OnnxValue Transpose(OnnxValue x, params long[] perm) => Op1("Transpose", [x], OnnxAttribute.Ints("perm", perm));
    public OnnxValue Concat(int axis, params OnnxValue[] xs) => Op1("Concat", xs, OnnxAttribute.Int("axis", axis));
    public OnnxValue Flatten(OnnxValue x, int axis = 1) => Op1("Flatten", [x], OnnxAttribute.Int("axis", axis));
    public OnnxValue Unsqueeze(OnnxValue x, params long[] axes) => Op1("Unsqueeze", [x, Const(axes)]);
    public OnnxValue Squeeze(OnnxValue x, params long[] axes) => Op1("Squeeze", [x, Const(axes)]);
    public OnnxValue Expand(OnnxValue x, OnnxValue shape) => Op1("Expand", [x, shape]);

    /// <summary>Shape(x)[start:end] as int64 (opset 15 start/end attributes).</summary>
    public OnnxValue Shape(OnnxValue x, long? start = null, long? end = null)
    {
        var attrs = new List<OnnxAttribute>();
        if (start is { } s) attrs.Add(OnnxAttribute.Int("start", s));
        if (end is { } e) attrs.Add(OnnxAttribute.Int("end", e));
        return Op1("Shape", [x], [.. attrs]);
    }

    public OnnxValue Slice(OnnxValue x, long[] starts, long[] ends, long[] axes, long[]? steps = null) =>
        Op1("Slice", [x, Const(starts), Const(ends), Const(axes), steps is null ? null : Const(steps)]);

    /// <summary>Splits into <paramref name="outputs"/> equal parts along <paramref name="axis"/>.</summary>
    public OnnxValue[] Split(OnnxValue x, int axis, int outputs) =>
        Opset >= 18
            ? Op("Split", [x], outputs, [OnnxAttribute.Int("axis", axis), OnnxAttribute.Int("num_outputs", outputs)])
            : Op("Split", [x], outputs, [OnnxAttribute.Int("axis", axis)]);

    /// <summary>Splits into parts of the given sizes along <paramref name="axis"/>.</summary>
    public OnnxValue[] Split(OnnxValue x, int axis, long[] sizes) =>
        Op("Split", [x, Const(sizes)], sizes.Length, [OnnxAttribute.Int("axis", axis)]);

    // ---- indexing ----
    public OnnxValue Gather(OnnxValue data, OnnxValue indices, int axis = 0) => Op1("Gather", [data, indices], OnnxAttribute.Int("axis", axis));
    public OnnxValue GatherElements(OnnxValue data, OnnxValue indices, int axis) => Op1("GatherElements", [data, indices], OnnxAttribute.Int("axis", axis));

    /// <summary>ArgMax (first index of the maximum, like torch.argmax).</summary>
    public OnnxValue ArgMax(OnnxValue x, int axis, bool keepDims = true) =>
        Op1("ArgMax", [x], OnnxAttribute.Int("axis", axis), OnnxAttribute.Int("keepdims", keepDims ? 1 : 0), OnnxAttribute.Int("select_last_index", 0));

    // ---- reductions and normalisation ----
    public OnnxValue ReduceMean(OnnxValue x, long[] axes, bool keepDims = true) => Reduce("ReduceMean", x, axes, keepDims);
    public OnnxValue ReduceL2(OnnxValue x, long[] axes, bool keepDims = true) => Reduce("ReduceL2", x, axes, keepDims);

    OnnxValue Reduce(string op, OnnxValue x, long[] axes, bool keepDims) =>
        Opset >= 18
            ? Op1(op, [x, Const(axes)], OnnxAttribute.Int("keepdims", keepDims ? 1 : 0))
            : Op1(op, [x], OnnxAttribute.Ints("axes", axes), OnnxAttribute.Int("keepdims", keepDims ? 1 : 0));

    public OnnxValue Softmax(OnnxValue x, int axis = -1) => Op1("Softmax", [x], OnnxAttribute.Int("axis", axis));

    /// <summary>LayerNormalization over the last axes from <paramref name="axis"/> (float32 statistics).</summary>
    public OnnxValue LayerNormalization(OnnxValue x, OnnxValue scale, OnnxValue? bias, float epsilon = 1e-5f, int axis = -1) =>
        Op("LayerNormalization", [x, scale, bias], 1, [OnnxAttribute.Int("axis", axis), OnnxAttribute.Float("epsilon", epsilon)])[0];

    /// <summary>Inference-mode BatchNormalization with running statistics.</summary>
    public OnnxValue BatchNormalization(OnnxValue x, OnnxValue scale, OnnxValue bias, OnnxValue mean, OnnxValue var, float epsilon = 1e-5f) =>
        Op1("BatchNormalization", [x, scale, bias, mean, var], OnnxAttribute.Float("epsilon", epsilon));

    // ---- convolution and pooling ----
    /// <summary>2-D (or N-D) convolution; <paramref name="pads"/> are [begin..., end...] as in ONNX.</summary>
    public OnnxValue Conv(OnnxValue x, OnnxValue weight, OnnxValue? bias, long[] strides, long[] pads, long[]? dilations = null, int group = 1)
    {
        var attrs = new List<OnnxAttribute> { OnnxAttribute.Ints("strides", strides), OnnxAttribute.Ints("pads", pads), OnnxAttribute.Int("group", group) };
        if (dilations is not null) attrs.Add(OnnxAttribute.Ints("dilations", dilations));
        return Op("Conv", [x, weight, bias], 1, attrs)[0];
    }

    /// <summary>AveragePool (count_include_pad 0, no ceil mode — torch's AvgPool2d defaults for unpadded pools).</summary>
    public OnnxValue AveragePool(OnnxValue x, long[] kernel, long[] strides, long[]? pads = null) =>
        Op1("AveragePool", [x],
            OnnxAttribute.Ints("kernel_shape", kernel), OnnxAttribute.Ints("strides", strides),
            OnnxAttribute.Ints("pads", pads ?? new long[kernel.Length * 2]));
}
