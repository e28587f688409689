using TorchSharp;
using static TorchSharp.torch;

namespace ClipGen.Modules;

/// <summary>OpenAI's QuickGELU: <c>x * sigmoid(1.702 x)</c>. Has no parameters.</summary>
/// <remarks>Its ONNX emission: <see cref="Onnx.ClipOnnx.QuickGelu"/> (same keys, same numbers; house rule 7).</remarks>
public sealed class QuickGELU() : nn.Module<Tensor, Tensor>("QuickGELU")
{
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return (x * torch.sigmoid(x * 1.702)).MoveToOuterDisposeScope();
    }
}

/// <summary>Activation factory shared by generated and run-time models.</summary>
public static class Activation
{
    public static nn.Module<Tensor, Tensor> Create(Specs.ActivationKind kind) =>
        kind == Specs.ActivationKind.Gelu ? nn.GELU() : new QuickGELU();
}
