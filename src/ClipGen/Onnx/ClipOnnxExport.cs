using System.Globalization;
using static TorchSharp.torch;

namespace ClipGen.Onnx;

/// <summary>Which CLIP graph an export holds.</summary>
public enum ClipOnnxKind
{
    /// <summary><c>pixel_values</c> → <c>image_features</c>.</summary>
    Image,

    /// <summary><c>input_ids</c> → <c>text_features</c>.</summary>
    Text,

    /// <summary>Both inputs → image_features, text_features, logits_per_image, logits_per_text.</summary>
    Full,

    /// <summary>All three files (<see cref="ClipOnnxExporter"/> only; a single graph is never of this kind).</summary>
    All,
}

/// <summary>Graph input/output names and metadata keys of ClipGen's CLIP exports.</summary>
public static class ClipOnnxNames
{
    public const string PixelValues = "pixel_values";
    public const string InputIds = "input_ids";
    public const string ImageFeatures = "image_features";
    public const string TextFeatures = "text_features";
    public const string LogitsPerImage = "logits_per_image";
    public const string LogitsPerText = "logits_per_text";

    /// <summary>Dynamic axis of the image-only and text-only exports.</summary>
    public const string Batch = "batch";

    /// <summary>Dynamic image axis of the full export.</summary>
    public const string ImageBatch = "image_batch";

    /// <summary>Dynamic text axis of the full export.</summary>
    public const string TextBatch = "text_batch";

    public const string MetaFormat = "clipgen.format";
    public const string MetaKind = "clipgen.kind";
    public const string MetaVision = "clipgen.vision";
    public const string MetaEmbedDim = "clipgen.embed_dim";
    public const string MetaImageSize = "clipgen.image_size";
    public const string MetaContextLength = "clipgen.context_length";
    public const string MetaVocabSize = "clipgen.vocab_size";
    public const string MetaActivation = "clipgen.activation";
    public const string MetaWeightStorage = "clipgen.weight_storage";
    public const string MetaSpecName = "clipgen.spec_name";
    public const string MetaSpecYaml = "clipgen.spec_yaml";
    public const string MetaMean = "clipgen.mean";
    public const string MetaStd = "clipgen.std";
    public const string MetaTokenizer = "clipgen.tokenizer";
    public const string MetaPooling = "clipgen.pooling";
    public const string MetaEosId = "clipgen.eos_id";
    public const string MetaLogitScale = "clipgen.logit_scale";
    public const string MetaLogitBias = "clipgen.logit_bias";

    /// <summary>Value of <see cref="MetaFormat"/>; bump when names or layout change.</summary>
    public const string FormatVersion = "1";
}

/// <summary>Builds the image, text and full CLIP graphs; save or serialise the returned builder.</summary>
public static class ClipOnnxExport
{
    /// <summary><c>pixel_values</c> [batch, 3, R, R] float32 → <c>image_features</c> [batch, E] (unnormalised).</summary>
    public static OnnxGraphBuilder ImageEncoder(ClipHyper h, Func<string, Tensor> w, OnnxBuilderOptions? options = null)
    {
        var b = Start(h, ClipOnnxKind.Image, options);
        var pixels = PixelInput(b, h, ClipOnnxNames.Batch);
        OnnxValue f;
        using (b.Scope("visual")) f = ClipOnnx.EmitVision(b, pixels, h.Vision, w);
        b.Output(f, ClipOnnxNames.ImageFeatures, OnnxElementType.Float, ClipOnnxNames.Batch, h.EmbedDim);
        return b;
    }

    /// <summary><c>input_ids</c> [batch, C] int64 → <c>text_features</c> [batch, E] (unnormalised).</summary>
    public static OnnxGraphBuilder TextEncoder(ClipHyper h, Func<string, Tensor> w, OnnxBuilderOptions? options = null)
    {
        var b = Start(h, ClipOnnxKind.Text, options);
        var ids = IdsInput(b, h, ClipOnnxNames.Batch);
        var f = ClipOnnx.EmitTextEncoder(b, ids, h.Text, w);
        b.Output(f, ClipOnnxNames.TextFeatures, OnnxElementType.Float, ClipOnnxNames.Batch, h.EmbedDim);
        return b;
    }

    /// <summary>
    /// Both towers and the logits: inputs <c>pixel_values</c> [image_batch, 3, R, R], <c>input_ids</c> [text_batch, C];
    /// outputs image_features, text_features, logits_per_image [image_batch, text_batch], logits_per_text [text_batch, image_batch].
    /// </summary>
    public static OnnxGraphBuilder Full(ClipHyper h, Func<string, Tensor> w, OnnxBuilderOptions? options = null)
    {
        var b = Start(h, ClipOnnxKind.Full, options);
        var pixels = PixelInput(b, h, ClipOnnxNames.ImageBatch);
        var ids = IdsInput(b, h, ClipOnnxNames.TextBatch);
        OnnxValue img;
        using (b.Scope("visual")) img = ClipOnnx.EmitVision(b, pixels, h.Vision, w);
        var txt = ClipOnnx.EmitTextEncoder(b, ids, h.Text, w);
        var (perImage, perText) = ClipOnnx.EmitLogits(b, img, txt, w, h.LogitBias);
        b.Output(img, ClipOnnxNames.ImageFeatures, OnnxElementType.Float, ClipOnnxNames.ImageBatch, h.EmbedDim);
        b.Output(txt, ClipOnnxNames.TextFeatures, OnnxElementType.Float, ClipOnnxNames.TextBatch, h.EmbedDim);
        b.Output(perImage, ClipOnnxNames.LogitsPerImage, OnnxElementType.Float, ClipOnnxNames.ImageBatch, ClipOnnxNames.TextBatch);
        b.Output(perText, ClipOnnxNames.LogitsPerText, OnnxElementType.Float, ClipOnnxNames.TextBatch, ClipOnnxNames.ImageBatch);
        return b;
    }

    /// <summary>
    /// CLIP's head alone: <c>image_features</c> [image_batch, E], <c>text_features</c> [text_batch, E] → logits_per_image,
    /// logits_per_text, with the temperature (stored, before exp) and optional SigLIP bias as weights.
    /// </summary>
    public static OnnxGraphBuilder LogitsHead(int embedDim, float logitScale, float? logitBias = null, OnnxBuilderOptions? options = null)
    {
        var b = new OnnxGraphBuilder(options);
        var img = b.Input(ClipOnnxNames.ImageFeatures, OnnxElementType.Float, ClipOnnxNames.ImageBatch, embedDim);
        var txt = b.Input(ClipOnnxNames.TextFeatures, OnnxElementType.Float, ClipOnnxNames.TextBatch, embedDim);
        using var scale = tensor(logitScale);
        using var bias = tensor(logitBias ?? 0f);
        Tensor W(string key) => key == "logit_scale" ? scale : bias;
        var (perImage, perText) = ClipOnnx.EmitLogits(b, img, txt, W, logitBias.HasValue);
        b.Output(perImage, ClipOnnxNames.LogitsPerImage, OnnxElementType.Float, ClipOnnxNames.ImageBatch, ClipOnnxNames.TextBatch);
        b.Output(perText, ClipOnnxNames.LogitsPerText, OnnxElementType.Float, ClipOnnxNames.TextBatch, ClipOnnxNames.ImageBatch);
        return b;
    }

    /// <summary>One of the three exports.</summary>
    public static OnnxGraphBuilder Export(ClipOnnxKind kind, ClipHyper h, Func<string, Tensor> w, OnnxBuilderOptions? options = null) => kind switch
    {
        ClipOnnxKind.Image => ImageEncoder(h, w, options),
        ClipOnnxKind.Text => TextEncoder(h, w, options),
        ClipOnnxKind.Full => Full(h, w, options),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };

    static OnnxValue PixelInput(OnnxGraphBuilder b, ClipHyper h, string batch) =>
        b.Input(ClipOnnxNames.PixelValues, OnnxElementType.Float, batch, 3, h.Vision.ImageSize, h.Vision.ImageSize);

    static OnnxValue IdsInput(OnnxGraphBuilder b, ClipHyper h, string batch) =>
        b.Input(ClipOnnxNames.InputIds, OnnxElementType.Int64, batch, h.Text.ContextLength);

    static OnnxGraphBuilder Start(ClipHyper h, ClipOnnxKind kind, OnnxBuilderOptions? options)
    {
        if (h.Vision.OutputDim != h.EmbedDim || h.Text.OutputDim != h.EmbedDim)
            throw new ArgumentException($"tower output dims ({h.Vision.OutputDim}, {h.Text.OutputDim}) differ from embed_dim {h.EmbedDim}");
        var b = new OnnxGraphBuilder(options);
        var inv = CultureInfo.InvariantCulture;
        b.Metadata[ClipOnnxNames.MetaFormat] = ClipOnnxNames.FormatVersion;
        b.Metadata[ClipOnnxNames.MetaKind] = kind.ToString().ToLowerInvariant();
        b.Metadata[ClipOnnxNames.MetaEmbedDim] = h.EmbedDim.ToString(inv);
        b.Metadata[ClipOnnxNames.MetaWeightStorage] = b.Options.WeightStorage.ToString().ToLowerInvariant();
        if (kind != ClipOnnxKind.Text)
        {
            b.Metadata[ClipOnnxNames.MetaVision] = h.Vision is ResNetHyper ? "resnet" : "vit";
            b.Metadata[ClipOnnxNames.MetaImageSize] = h.Vision.ImageSize.ToString(inv);
        }
        if (kind != ClipOnnxKind.Image)
        {
            b.Metadata[ClipOnnxNames.MetaContextLength] = h.Text.ContextLength.ToString(inv);
            b.Metadata[ClipOnnxNames.MetaVocabSize] = h.Text.VocabSize.ToString(inv);
        }
        var act = kind == ClipOnnxKind.Text || h.Vision is not VitHyper v ? h.Text.Activation : v.Activation;
        b.Metadata[ClipOnnxNames.MetaActivation] = act == Activation.QuickGelu ? "quick_gelu" : "gelu";
        return b;
    }
}
