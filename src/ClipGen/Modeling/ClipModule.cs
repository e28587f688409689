using ClipGen.Modules;
using ClipGen.Specs;
using TorchSharp;
using TorchSharp.Modules;
using Transformer = ClipGen.Modules.Transformer;
using static TorchSharp.torch;

namespace ClipGen.Modeling;

/// <summary>Logits of a batch of images against a batch of texts.</summary>
public sealed record ClipOutput(Tensor LogitsPerImage, Tensor LogitsPerText) : IDisposable
{
    public void Dispose()
    {
        LogitsPerImage.Dispose();
        LogitsPerText.Dispose();
    }
}

/// <summary>
/// OpenAI's <c>CLIP</c> module: an image tower (<c>visual</c>) and the text tower's parts at the top level
/// (<c>token_embedding</c>, <c>positional_embedding</c>, <c>transformer</c>, <c>ln_final</c>, <c>text_projection</c>),
/// plus <c>logit_scale</c>. State-dict keys equal OpenAI's and open_clip's. Generated models derive from it and
/// compose their towers with literal hyper-parameters; <see cref="RuntimeClipModel"/> composes them from a spec
/// loaded at run time.
/// </summary>
/// <remarks>
/// Its ONNX emission: <see cref="Onnx.ClipOnnx.EmitTextEncoder"/> (EncodeText), <see cref="Onnx.ClipOnnx.EmitLogits"/> (Logits) and
/// <see cref="Onnx.ClipOnnxExporter"/> (whole exports from this module's state_dict).
/// </remarks>
public abstract class ClipModule : nn.Module<Tensor, Tensor, ClipOutput>
{
    private readonly Parameter positional_embedding;
    private readonly Parameter text_projection;
    private readonly Parameter logit_scale;
    private readonly Parameter? logit_bias;
    private readonly nn.Module<Tensor, Tensor> visual;
    private readonly Transformer transformer;
    private readonly Embedding token_embedding;
    private readonly LayerNorm ln_final;

    protected ClipModule(ClipSpec spec, nn.Module<Tensor, Tensor> visual, Transformer transformer) : base(spec.ClassName)
    {
        Spec = spec;
        var t = spec.Text;
        this.visual = visual;
        this.transformer = transformer;
        positional_embedding = nn.Parameter(torch.empty(t.ContextLength, t.Width));
        text_projection = nn.Parameter(torch.empty(t.Width, spec.EmbedDim));
        logit_scale = nn.Parameter(torch.tensor((float)spec.InitLogitScale));
        if (spec.Loss == LossKind.SigLip) logit_bias = nn.Parameter(torch.tensor((float)spec.InitLogitBias));
        token_embedding = nn.Embedding(t.VocabSize, t.Width);
        ln_final = nn.LayerNorm(t.Width, eps: 1e-5);

        // PyTorch's state_dict order: the module's own parameters, then its children.
        register_parameter("positional_embedding", positional_embedding);
        register_parameter("text_projection", text_projection);
        register_parameter("logit_scale", logit_scale);
        if (logit_bias is not null) register_parameter("logit_bias", logit_bias);
        register_module("visual", visual);
        register_module("transformer", transformer);
        register_module("token_embedding", token_embedding);
        register_module("ln_final", ln_final);
        InitializeParameters();
    }

    /// <summary>The resolved spec this model was built from.</summary>
    public ClipSpec Spec { get; }

    /// <summary>The spec's name (e.g. <c>ViT-B-32</c>).</summary>
    public string SpecName => Spec.Name;

    /// <summary>The learnable temperature, as stored (its exp() scales the logits).</summary>
    public Parameter LogitScale => logit_scale;

    /// <summary>The SigLIP logit bias, when the spec's loss is SigLIP.</summary>
    public Parameter? LogitBias => logit_bias;

    /// <summary>The image tower.</summary>
    public nn.Module<Tensor, Tensor> Visual => visual;

    /// <summary>Image features, unnormalised: [N, 3, R, R] float → [N, embed_dim].</summary>
    public Tensor EncodeImage(Tensor pixelValues)
    {
        CheckPixels(pixelValues);
        return visual.call(pixelValues);
    }

    /// <summary>Text features, unnormalised: [N, context_length] int64 token ids → [N, embed_dim].</summary>
    public Tensor EncodeText(Tensor inputIds)
    {
        CheckTokens(inputIds);
        using var scope = NewDisposeScope();
        long n = inputIds.shape[0], l = inputIds.shape[1];
        var x = token_embedding.call(inputIds);
        x = x + positional_embedding.narrow(0, 0, l);
        x = transformer.call(x);
        x = ln_final.call(x);
        var pooled = Spec.Text.Pooling == TextPooling.Eos
            ? inputIds.eq(Spec.Text.EosId).to(ScalarType.Int32).argmax(-1)
            : inputIds.argmax(-1);
        var idx = pooled.view(n, 1, 1).expand(n, 1, x.shape[2]);
        x = x.gather(1, idx).squeeze(1);
        return x.matmul(text_projection).MoveToOuterDisposeScope();
    }

    /// <summary>CLIP's forward: cosine similarities scaled by <c>exp(logit_scale)</c> (plus <c>logit_bias</c> for SigLIP).</summary>
    public override ClipOutput forward(Tensor pixelValues, Tensor inputIds)
    {
        using var scope = NewDisposeScope();
        var image = EncodeImage(pixelValues);
        var text = EncodeText(inputIds);
        var (perImage, perText) = Logits(image, text);
        return new ClipOutput(perImage.MoveToOuterDisposeScope(), perText.MoveToOuterDisposeScope());
    }

    /// <summary>Logits from unnormalised features: scale · normalise(image) @ normalise(text)ᵀ (+ bias).</summary>
    public (Tensor PerImage, Tensor PerText) Logits(Tensor imageFeatures, Tensor textFeatures)
    {
        using var scope = NewDisposeScope();
        var img = imageFeatures / imageFeatures.norm(1, keepdim: true);
        var txt = textFeatures / textFeatures.norm(1, keepdim: true);
        var perImage = logit_scale.exp() * img.matmul(txt.t());
        if (logit_bias is not null) perImage = perImage + logit_bias;
        var perText = perImage.t();
        return (perImage.MoveToOuterDisposeScope(), perText.MoveToOuterDisposeScope());
    }

    // One set of input checks for every backend (Backends.ClipInputs), so that TorchSharp and ONNX Runtime refuse the same inputs.
    void CheckPixels(Tensor x) => Backends.ClipInputs.CheckPixels(Spec, x);

    void CheckTokens(Tensor ids) => Backends.ClipInputs.CheckTokens(Spec, ids);

    /// <summary>OpenAI's <c>initialize_parameters</c> for the text tower and projections (for training from scratch).</summary>
    void InitializeParameters()
    {
        using var _ = no_grad();
        nn.init.normal_(token_embedding.weight!, std: 0.02);
        nn.init.normal_(positional_embedding, std: 0.01);
        var w = transformer.Width;
        var layers = Spec.Text.Layers;
        double projStd = Math.Pow(w, -0.5) * Math.Pow(2 * layers, -0.5);
        double attnStd = Math.Pow(w, -0.5);
        double fcStd = Math.Pow(2 * w, -0.5);
        foreach (var (name, p) in transformer.named_parameters())
        {
            if (name.EndsWith("attn.in_proj_weight", StringComparison.Ordinal)) nn.init.normal_(p, std: attnStd);
            else if (name.EndsWith("attn.out_proj.weight", StringComparison.Ordinal)) nn.init.normal_(p, std: projStd);
            else if (name.EndsWith("mlp.c_fc.weight", StringComparison.Ordinal)) nn.init.normal_(p, std: fcStd);
            else if (name.EndsWith("mlp.c_proj.weight", StringComparison.Ordinal)) nn.init.normal_(p, std: projStd);
        }
        nn.init.normal_(text_projection, std: Math.Pow(w, -0.5));
    }

    /// <summary>Composes the image tower of a spec (shared by generated code's fallbacks and run-time models).</summary>
    public static nn.Module<Tensor, Tensor> CreateVisual(ClipSpec s) => s.Vision.Kind == VisionKind.VisionTransformer
        ? new VisionTransformer(s.Vision.ImageSize, s.Vision.PatchSize, s.Vision.Width, s.Vision.Layers[0], s.VisionHeads, s.VisionMlpWidth, s.EmbedDim, s.Activation)
        : new ModifiedResNet(s.Vision.Layers.ToArray(), s.EmbedDim, s.VisionHeads, s.Vision.ImageSize, s.Vision.Width);

    /// <summary>Composes the text transformer of a spec.</summary>
    public static Transformer CreateTextTransformer(ClipSpec s) =>
        new(s.Text.Width, s.Text.Layers, s.Text.Heads, s.TextMlpWidth, s.Activation, causal: true);
}

/// <summary>A CLIP model built from a spec loaded at run time (no recompilation), e.g. a user's YAML file.</summary>
public sealed class RuntimeClipModel : ClipModule
{
    public RuntimeClipModel(ClipSpec spec) : base(spec, CreateVisual(spec), CreateTextTransformer(spec)) { }
}
