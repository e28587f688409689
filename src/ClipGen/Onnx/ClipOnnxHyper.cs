using ClipGen.Specs;

namespace ClipGen.Onnx;

/// <summary>The MLP activation of a residual attention block.</summary>
public enum Activation
{
    /// <summary>x·sigmoid(1.702x), OpenAI's CLIP.</summary>
    QuickGelu,

    /// <summary>Exact GELU, 0.5x(1 + erf(x/√2)) (open_clip without <c>quick_gelu</c>).</summary>
    Gelu,
}

/// <summary>A stack of residual attention blocks (<c>transformer.resblocks.N</c>).</summary>
/// <param name="Width">Model width d_model.</param>
/// <param name="Layers">Number of residual attention blocks.</param>
/// <param name="Heads">Attention heads; Width must be divisible by it.</param>
/// <param name="Activation">MLP activation.</param>
/// <param name="MlpRatio">MLP hidden width = (int)(Width·MlpRatio), open_clip's rule; 4 in OpenAI's CLIP.</param>
public sealed record TransformerHyper(int Width, int Layers, int Heads, Activation Activation, double MlpRatio = 4.0)
{
    public int MlpWidth => (int)(Width * MlpRatio);
    public int HeadDim => Width / Heads;
}

/// <summary>An image tower.</summary>
/// <param name="ImageSize">Input resolution R of <c>pixel_values</c> [batch, 3, R, R].</param>
/// <param name="OutputDim">The joint embedding width the tower projects to.</param>
public abstract record VisionHyper(int ImageSize, int OutputDim);

/// <summary>OpenAI's VisionTransformer (<c>visual.conv1</c>, <c>class_embedding</c>, …, <c>proj</c>).</summary>
/// <param name="PatchSize">Patch size (the conv1 kernel and stride).</param>
/// <param name="Width">Transformer width.</param>
/// <param name="Layers">Transformer layers.</param>
/// <param name="Heads">Attention heads (OpenAI: Width/64; open_clip: Width/head_width).</param>
/// <param name="Activation">MLP activation.</param>
/// <param name="MlpRatio">MLP ratio (4).</param>
public sealed record VitHyper(int ImageSize, int PatchSize, int Width, int Layers, int Heads, int OutputDim, Activation Activation, double MlpRatio = 4.0)
    : VisionHyper(ImageSize, OutputDim)
{
    public int Grid => ImageSize / PatchSize;
    public TransformerHyper Transformer => new(Width, Layers, Heads, Activation, MlpRatio);
}

/// <summary>OpenAI's ModifiedResNet: 3-conv stem, four Bottleneck stages (strides 1,2,2,2, expansion 4), AttentionPool2d.</summary>
/// <param name="Layer1">Bottleneck blocks in layer1 (likewise Layer2..Layer4).</param>
/// <param name="Width">Stem width (the first stage has Width planes).</param>
/// <param name="Heads">Attention-pool heads (OpenAI: Width·32/64).</param>
public sealed record ResNetHyper(int ImageSize, int Layer1, int Layer2, int Layer3, int Layer4, int Width, int Heads, int OutputDim)
    : VisionHyper(ImageSize, OutputDim)
{
    /// <summary>Channels entering the attention pool: Width·32.</summary>
    public int PoolEmbedDim => Width * 32;

    /// <summary>Side of the final feature map: ImageSize/32.</summary>
    public int SpacialDim => ImageSize / 32;

    public int[] Layers => [Layer1, Layer2, Layer3, Layer4];
}

/// <summary>CLIP's text tower (root keys <c>token_embedding</c>, <c>positional_embedding</c>, <c>transformer</c>, <c>ln_final</c>, <c>text_projection</c>).</summary>
/// <param name="ContextLength">Tokens per caption (77).</param>
/// <param name="VocabSize">Vocabulary size (49408).</param>
/// <param name="Pooling">Which token is pooled: the largest id (OpenAI) or the first <paramref name="EosId"/>.</param>
/// <param name="EosId">End-of-text id, used by <see cref="TextPooling.Eos"/> pooling.</param>
public sealed record TextHyper(int ContextLength, int VocabSize, int Width, int Layers, int Heads, int OutputDim, Activation Activation, double MlpRatio = 4.0,
    TextPooling Pooling = TextPooling.Argmax, int EosId = SpecDefaults.EosId)
{
    public TransformerHyper Transformer => new(Width, Layers, Heads, Activation, MlpRatio);
}

/// <summary>A whole CLIP model.</summary>
/// <param name="LogitBias">True when the model has SigLIP's <c>logit_bias</c>, added to the scaled logits.</param>
public sealed record ClipHyper(int EmbedDim, VisionHyper Vision, TextHyper Text, bool LogitBias = false)
{
    /// <summary>
    /// The emitters' hyper-parameters of a resolved spec: the one bridge from <see cref="ClipSpec"/> to the ONNX side,
    /// applying the same derivations (heads, MLP widths, grid) as the TorchSharp composition in
    /// <see cref="Modeling.ClipModule.CreateVisual"/>. Generated models hold the same value as literals (<c>OnnxHyper</c>).
    /// </summary>
    public static ClipHyper FromSpec(ClipSpec spec)
    {
        var act = spec.Activation == ActivationKind.Gelu ? Activation.Gelu : Activation.QuickGelu;
        var v = spec.Vision;
        VisionHyper vision = v.Kind == VisionKind.VisionTransformer
            ? new VitHyper(v.ImageSize, v.PatchSize, v.Width, v.Layers[0], spec.VisionHeads, spec.EmbedDim, act, v.MlpRatio)
            : new ResNetHyper(v.ImageSize, v.Layers[0], v.Layers[1], v.Layers[2], v.Layers[3], v.Width, spec.VisionHeads, spec.EmbedDim);
        var t = spec.Text;
        var text = new TextHyper(t.ContextLength, t.VocabSize, t.Width, t.Layers, t.Heads, spec.EmbedDim, act, t.MlpRatio, t.Pooling, t.EosId);
        return new ClipHyper(spec.EmbedDim, vision, text, spec.Loss == LossKind.SigLip);
    }
}
