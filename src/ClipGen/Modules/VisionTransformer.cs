using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ClipGen.Modules;

/// <summary>
/// OpenAI's <c>VisionTransformer</c>: patch embedding (<c>conv1</c>, no bias), class token, positional embedding,
/// <c>ln_pre</c>, transformer, <c>ln_post</c> on the class token, then <c>proj</c>.
/// </summary>
/// <remarks>Its ONNX emission: <see cref="Onnx.ClipOnnx.EmitVisionTransformer"/> (same keys, same numbers; house rule 7).</remarks>
public sealed class VisionTransformer : nn.Module<Tensor, Tensor>
{
    private readonly Parameter class_embedding;
    private readonly Parameter positional_embedding;
    private readonly Parameter proj;
    private readonly Conv2d conv1;
    private readonly LayerNorm ln_pre;
    private readonly Transformer transformer;
    private readonly LayerNorm ln_post;

    public VisionTransformer(int imageSize, int patchSize, int width, int layers, int heads, int mlpWidth, int outputDim, Specs.ActivationKind activation)
        : base("VisionTransformer")
    {
        ImageSize = imageSize;
        var grid = imageSize / patchSize;
        var scale = Math.Pow(width, -0.5);
        class_embedding = nn.Parameter(torch.randn(width) * scale);
        positional_embedding = nn.Parameter(torch.randn(grid * grid + 1, width) * scale);
        proj = nn.Parameter(torch.randn(width, outputDim) * scale);
        conv1 = nn.Conv2d(3, width, patchSize, stride: patchSize, bias: false);
        ln_pre = nn.LayerNorm(width, eps: 1e-5);
        transformer = new Transformer(width, layers, heads, mlpWidth, activation, causal: false);
        ln_post = nn.LayerNorm(width, eps: 1e-5);
        RegisterComponents();
    }

    public int ImageSize { get; }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        x = conv1.call(x);                                  // [N, width, grid, grid]
        x = x.flatten(2).transpose(1, 2);                   // [N, grid², width]
        var cls = class_embedding.to(x.dtype).expand(x.shape[0], 1, -1);
        x = torch.cat([cls, x], dim: 1);                    // [N, grid²+1, width]
        x = x + positional_embedding.to(x.dtype);
        x = ln_pre.call(x);
        x = transformer.call(x);
        x = ln_post.call(x.select(1, 0));
        return x.matmul(proj).MoveToOuterDisposeScope();
    }
}
