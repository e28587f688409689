using ClipGen.Backends;
using ClipGen.Modules;
using ClipGen.Specs;
using TorchSharp;
using TorchSharp.Modules;
using ClipGen.Onnx;
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
/// The CLIP model of every family, OpenAI's <c>CLIP</c> module generalised by its <see cref="ClipPlan"/>: an image tower
/// (<c>visual</c>) and the text tower's parts at the top level (<c>token_embedding</c>, <c>positional_embedding</c>,
/// <c>transformer</c>, <c>ln_final</c>, <c>text_projection</c>), plus <c>logit_scale</c> (and SigLIP's <c>logit_bias</c>).
/// State-dict keys equal OpenAI's and open_clip's <c>CLIP</c> class; the plan maps them to every other layout. Generated models
/// derive from it with their spec; <see cref="RuntimeClipModel"/> takes a spec loaded at run time. The text tower's and the
/// logits' ONNX emission are here, beside their forward (<see cref="EmitText"/>, <see cref="EmitLogits"/>).
/// </summary>
public abstract class ClipModule : nn.Module<Tensor, Tensor, ClipOutput>
{
    private readonly Parameter positional_embedding;
    private readonly Parameter? text_projection;
    private readonly Parameter logit_scale;
    private readonly Parameter? logit_bias;
    private readonly nn.Module<Tensor, Tensor> visual;
    private readonly Transformer transformer;
    private readonly Embedding token_embedding;
    private readonly LayerNorm ln_final;
    private readonly Linear? text_projection_linear;

    /// <summary>Before the first model multiplies anything: MKL's AVX2 kernels on AMD CPUs (see <see cref="MklAmdDispatch"/>).</summary>
    static ClipModule() => MklAmdDispatch.EnsureApplied();

    protected ClipModule(ClipSpec spec) : this(spec, ClipPlan.From(spec)) { }

    protected ClipModule(ClipSpec spec, ClipPlan plan) : base(spec.ClassName)
    {
        Spec = spec;
        Plan = plan;
        var t = plan.Text;
        ModelLimits.CheckFits(spec, plan);
        visual = VisionTower.Create(plan.Vision);
        transformer = new Transformer(t.Transformer);
        positional_embedding = nn.Parameter(torch.empty(t.ContextLength, t.Width));
        if (t.Proj == ProjectionKind.Linear && !t.ProjBias) text_projection = nn.Parameter(torch.empty(t.Width, t.OutputDim));
        logit_scale = nn.Parameter(torch.tensor((float)plan.InitLogitScale));
        if (plan.LogitBias) logit_bias = nn.Parameter(torch.tensor((float)plan.InitLogitBias));
        token_embedding = nn.Embedding(t.VocabSize, t.Width);
        ln_final = Layers.LayerNorm(t.LnFinal);
        if (t.Proj == ProjectionKind.Linear && t.ProjBias) text_projection_linear = nn.Linear(t.Width, t.OutputDim);

        // PyTorch's state_dict order: the module's own parameters, then its children (ClipPlan writes its keys in this order).
        register_parameter("positional_embedding", positional_embedding);
        if (text_projection is not null) register_parameter("text_projection", text_projection);
        register_parameter("logit_scale", logit_scale);
        if (logit_bias is not null) register_parameter("logit_bias", logit_bias);
        register_module("visual", visual);
        register_module("transformer", transformer);
        register_module("token_embedding", token_embedding);
        register_module("ln_final", ln_final);
        if (text_projection_linear is not null) register_module("text_projection", text_projection_linear);
        InitializeParameters();
    }

    /// <summary>The resolved spec this model was built from.</summary>
    public ClipSpec Spec { get; }

    /// <summary>The architecture plan (derived numbers, blocks, keys in every layout).</summary>
    public ClipPlan Plan { get; }

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

    /// <summary>
    /// Text features, unnormalised: [N, L] int64 token ids (L ≤ context_length; shorter rows are padded with the spec's
    /// <c>pad_id</c> to the context, as its tokenizer does) → [N, embed_dim].
    /// </summary>
    public Tensor EncodeText(Tensor inputIds)
    {
        CheckTokens(inputIds);
        using var scope = NewDisposeScope();
        var t = Plan.Text;
        if (inputIds.shape[1] < t.ContextLength)
            inputIds = nn.functional.pad(inputIds.to(ScalarType.Int64), [0, t.ContextLength - inputIds.shape[1]], value: t.PadId);
        var x = token_embedding.call(inputIds);
        x = x + positional_embedding;
        x = transformer.call(x);
        x = ln_final.call(x);
        x = Pooling.Text(x, inputIds, t.Pooling, t.EosId);
        if (text_projection is not null) x = x.matmul(text_projection);
        else if (text_projection_linear is not null) x = text_projection_linear.call(x);
        return x.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// encode_text in ONNX, at the model root: token_embedding Gather, + positional_embedding, transformer, ln_final, pooling,
    /// projection. [N, C] int64 → [N, OutputDim].
    /// </summary>
    public static OnnxValue EmitText(OnnxGraphBuilder b, OnnxValue inputIds, TextPlan t)
    {
        OnnxValue x;
        using (b.Scope("token_embedding")) x = b.Gather(b.Parameter("weight", [t.VocabSize, t.Width]), inputIds, 0);   // [N, C, D]
        x = b.Add(x, b.Parameter("positional_embedding", [t.ContextLength, t.Width]));
        using (b.Scope("transformer")) x = Transformer.Emit(b, x, t.Transformer, t.ContextLength);
        using (b.Scope("ln_final")) x = Layers.EmitLayerNorm(b, x, t.LnFinal);
        x = Pooling.EmitText(b, x, inputIds, t.Pooling, t.EosId, t.ContextLength, t.Width);
        if (t.Proj == ProjectionKind.None) return x;
        if (!t.ProjBias) return b.MatMul(x, b.Parameter("text_projection", [t.Width, t.OutputDim]));
        using (b.Scope("text_projection")) return Layers.EmitLinear(b, x, t.OutputDim, t.Width);
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

    /// <summary>
    /// <see cref="Logits"/> in ONNX: both features normalised (x/‖x‖), scale = logit_scale.exp(), logits_per_image =
    /// scale·img·txtᵀ (+ <c>logit_bias</c> when <paramref name="logitBias"/>), logits_per_text its transpose.
    /// </summary>
    public static (OnnxValue LogitsPerImage, OnnxValue LogitsPerText) EmitLogits(OnnxGraphBuilder b, OnnxValue imageFeatures, OnnxValue textFeatures, bool logitBias) =>
        ClipOnnxHead.Emit(b, imageFeatures, textFeatures, logitBias);

    // One set of input checks for every backend (Backends.ClipInputs), so that TorchSharp and ONNX Runtime refuse the same inputs.
    void CheckPixels(Tensor x) => Backends.ClipTensorInputs.CheckPixels(Spec, x);

    void CheckTokens(Tensor ids) => Backends.ClipTensorInputs.CheckTokens(Spec, ids);

    /// <summary>OpenAI's and open_clip's <c>initialize_parameters</c> for the text tower and its projection (training from scratch).</summary>
    void InitializeParameters()
    {
        using var _ = no_grad();
        nn.init.normal_(token_embedding.weight!, std: 0.02);
        nn.init.normal_(positional_embedding, std: 0.01);
        var t = Plan.Text;
        var w = t.Width;
        double projStd = Math.Pow(w, -0.5) * Math.Pow(2 * t.Transformer.Layers, -0.5);
        double attnStd = Math.Pow(w, -0.5);
        double fcStd = Math.Pow(2 * w, -0.5);
        foreach (var (name, p) in transformer.named_parameters())
        {
            if (name.EndsWith("attn.in_proj_weight", StringComparison.Ordinal)) nn.init.normal_(p, std: attnStd);
            else if (name.EndsWith("attn.out_proj.weight", StringComparison.Ordinal)) nn.init.normal_(p, std: projStd);
            else if (name.EndsWith("mlp.c_fc.weight", StringComparison.Ordinal)) nn.init.normal_(p, std: fcStd);
            else if (name.EndsWith("mlp.c_proj.weight", StringComparison.Ordinal)) nn.init.normal_(p, std: projStd);
        }
        if (text_projection is not null) nn.init.normal_(text_projection, std: Math.Pow(w, -0.5));
        if (text_projection_linear is not null)
        {
            nn.init.normal_(text_projection_linear.weight!, std: Math.Pow(w, -0.5));
            nn.init.zeros_(text_projection_linear.bias!);
        }
    }
}

/// <summary>A CLIP model built from a spec loaded at run time (no recompilation), e.g. a user's YAML file.</summary>
public sealed class RuntimeClipModel(ClipSpec spec) : ClipModule(spec);
