using ClipGen.Onnx;
using ClipGen.Specs;
using TorchSharp;
using static TorchSharp.torch;

namespace ClipGen.Modules;

/// <summary>OpenAI's QuickGELU: <c>x * sigmoid(1.702 x)</c>. Has no parameters.</summary>
public sealed class QuickGELU() : nn.Module<Tensor, Tensor>("QuickGELU")
{
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return (x * torch.sigmoid(x * 1.702)).MoveToOuterDisposeScope();
    }
}

/// <summary>The MLP activations (<see cref="ActivationKind"/>): the TorchSharp module and its ONNX emission.</summary>
public static class Activation
{
    /// <summary>The module of an activation: QuickGELU, exact GELU, or GELU with the tanh approximation.</summary>
    public static nn.Module<Tensor, Tensor> Create(ActivationKind kind) => kind switch
    {
        ActivationKind.Gelu => nn.GELU(),
        ActivationKind.GeluTanh => nn.GELU(TorchSharp.Modules.GELU.Approximate.tanh),
        ActivationKind.QuickGelu => new QuickGELU(),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };

    /// <summary>
    /// The activation in ONNX: QuickGELU as x·sigmoid(1.702x); GELU as the native <c>Gelu</c> op from opset 20, else
    /// 0.5·x·(1 + erf(x/√2)) (exact) or 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) (tanh).
    /// </summary>
    public static OnnxValue Emit(OnnxGraphBuilder b, OnnxValue x, ActivationKind kind)
    {
        switch (kind)
        {
            case ActivationKind.QuickGelu:
                return b.Mul(x, b.Sigmoid(b.Mul(x, b.Const(1.702f))));
            case ActivationKind.Gelu:
                if (b.Opset >= 20) return b.Op1("Gelu", [x], OnnxAttribute.String("approximate", "none"));
                return b.Mul(b.Mul(x, b.Add(b.Erf(b.Div(x, b.Const(MathF.Sqrt(2f)))), b.Const(1f))), b.Const(0.5f));
            case ActivationKind.GeluTanh:
            {
                if (b.Opset >= 20) return b.Op1("Gelu", [x], OnnxAttribute.String("approximate", "tanh"));
                var cube = b.Mul(b.Mul(x, x), x);
                var inner = b.Mul(b.Add(x, b.Mul(cube, b.Const(0.044715f))), b.Const(MathF.Sqrt(2f / MathF.PI)));
                return b.Mul(b.Mul(x, b.Add(b.Op1("Tanh", [inner]), b.Const(1f))), b.Const(0.5f));
            }
            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, null);
        }
    }
}
