using ClipGen.Onnx;
using ClipGen.Specs;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ClipGen.Modules;

/// <summary>
/// PyTorch's built-in layers as ClipGen's blocks use them: each TorchSharp module (its forward is libtorch's) with its ONNX
/// emission beside it. Emitters work in the builder's current scope, like a module that does not know its own name: the caller
/// enters the child's scope (<c>using (b.Scope("ln_1"))</c>), so weights are read by their full state_dict key.
/// </summary>
public static class Layers
{
    /// <summary>nn.LayerNorm of a plan (width, eps).</summary>
    public static LayerNorm LayerNorm(LayerNormPlan p) => nn.LayerNorm(p.Width, eps: p.Eps);

    /// <summary>nn.LayerNorm over the last axis, computed in float32 (<c>weight</c>, <c>bias</c>).</summary>
    public static OnnxValue EmitLayerNorm(OnnxGraphBuilder b, OnnxValue x, LayerNormPlan p) =>
        b.LayerNormalization(x, b.Parameter("weight", [p.Width]), b.Parameter("bias", [p.Width]), (float)p.Eps);

    /// <summary>nn.Linear: x·Wᵀ (+ b) with <c>weight</c> [out, in] and <c>bias</c> [out].</summary>
    public static OnnxValue EmitLinear(OnnxGraphBuilder b, OnnxValue x, long outFeatures, long inFeatures, bool bias = true)
    {
        var y = b.MatMul(x, b.Transpose(b.Parameter("weight", [outFeatures, inFeatures]), 1, 0));
        return bias ? b.Add(y, b.Parameter("bias", [outFeatures])) : y;
    }

    /// <summary>nn.Conv2d (<c>weight</c> [out, in, k, k], optional <c>bias</c>).</summary>
    public static OnnxValue EmitConv2d(OnnxGraphBuilder b, OnnxValue x, long outChannels, long inChannels, int kernel, int stride = 1, int padding = 0, bool bias = false) =>
        b.Conv(x, b.Parameter("weight", [outChannels, inChannels, kernel, kernel]), bias ? b.Parameter("bias", [outChannels]) : null,
            [stride, stride], [padding, padding, padding, padding]);

    /// <summary>nn.BatchNorm2d in eval mode (<c>weight</c>, <c>bias</c>, <c>running_mean</c>, <c>running_var</c>; eps 1e-5).</summary>
    public static OnnxValue EmitBatchNorm2d(OnnxGraphBuilder b, OnnxValue x, long channels) =>
        b.BatchNormalization(x, b.Parameter("weight", [channels]), b.Parameter("bias", [channels]), b.Parameter("running_mean", [channels]), b.Parameter("running_var", [channels]), 1e-5f);

    /// <summary>nn.AvgPool2d(k) (stride k, no padding).</summary>
    public static OnnxValue EmitAvgPool2d(OnnxGraphBuilder b, OnnxValue x, int k) => b.AveragePool(x, [k, k], [k, k]);
}
