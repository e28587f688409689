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
    /// <summary>The training loss (<c>clip</c> or <c>siglip</c>): how zero-shot probabilities are computed.</summary>
    public const string MetaLoss = "clipgen.loss";

    /// <summary>The image encoder's file in an export folder.</summary>
    public const string ImageFileName = "image.onnx";

    /// <summary>The text encoder's file in an export folder.</summary>
    public const string TextFileName = "text.onnx";

    /// <summary>The full model's file in an export folder.</summary>
    public const string FullFileName = "clip.onnx";

    /// <summary>Value of <see cref="MetaFormat"/>; bump when names or layout change.</summary>
    public const string FormatVersion = "1";
}

/// <summary>
/// CLIP's head in ONNX: both features normalised (x/‖x‖), logits_per_image = exp(logit_scale) · img · txtᵀ (+ logit_bias for
/// SigLIP), logits_per_text its transpose. The TorchSharp model emits the same graph at the end of its full export.
/// </summary>
public static class ClipOnnxHead
{
    /// <summary>Emits the head over two feature values; <c>logit_scale</c> (and <c>logit_bias</c>) are parameters of the current scope.</summary>
    public static (OnnxValue LogitsPerImage, OnnxValue LogitsPerText) Emit(OnnxGraphBuilder b, OnnxValue imageFeatures, OnnxValue textFeatures, bool logitBias)
    {
        var img = b.Div(imageFeatures, b.ReduceL2(imageFeatures, [-1], keepDims: true));
        var txt = b.Div(textFeatures, b.ReduceL2(textFeatures, [-1], keepDims: true));
        var scale = b.Exp(b.Parameter("logit_scale", []));
        var perImage = b.Mul(b.MatMul(img, b.Transpose(txt, 1, 0)), scale);
        if (logitBias) perImage = b.Add(perImage, b.Parameter("logit_bias", []));
        return (perImage, b.Transpose(perImage, 1, 0));
    }

    /// <summary>
    /// The head alone: <c>image_features</c> [image_batch, E], <c>text_features</c> [text_batch, E] → logits_per_image,
    /// logits_per_text, with the temperature (stored, before exp) and optional SigLIP bias as weights.
    /// </summary>
    public static OnnxGraphBuilder Build(int embedDim, float logitScale, float? logitBias = null, OnnxBuilderOptions? options = null)
    {
        OnnxWeight W(string key) => OnnxWeight.FromFloats([key == "logit_scale" ? logitScale : logitBias ?? 0f]);
        var b = new OnnxGraphBuilder(options, W);
        var img = b.Input(ClipOnnxNames.ImageFeatures, OnnxElementType.Float, ClipOnnxNames.ImageBatch, embedDim);
        var txt = b.Input(ClipOnnxNames.TextFeatures, OnnxElementType.Float, ClipOnnxNames.TextBatch, embedDim);
        var (perImage, perText) = Emit(b, img, txt, logitBias.HasValue);
        b.Output(perImage, ClipOnnxNames.LogitsPerImage, OnnxElementType.Float, ClipOnnxNames.ImageBatch, ClipOnnxNames.TextBatch);
        b.Output(perText, ClipOnnxNames.LogitsPerText, OnnxElementType.Float, ClipOnnxNames.TextBatch, ClipOnnxNames.ImageBatch);
        return b;
    }
}
