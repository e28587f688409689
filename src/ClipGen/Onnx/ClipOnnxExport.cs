using System.Globalization;
using ClipGen.Modeling;
using ClipGen.Modules;
using ClipGen.Specs;

namespace ClipGen.Onnx;

/// <summary>Builds the image, text and full CLIP graphs of a plan; save or serialise the returned builder.</summary>
public static class ClipOnnxExport
{
    /// <summary><c>pixel_values</c> [batch, 3, R, R] float32 → <c>image_features</c> [batch, E] (unnormalised).</summary>
    public static OnnxGraphBuilder ImageEncoder(ClipPlan plan, OnnxWeightSource weights, OnnxBuilderOptions? options = null)
    {
        var b = Start(plan, ClipOnnxKind.Image, weights, options);
        var pixels = PixelInput(b, plan, ClipOnnxNames.Batch);
        OnnxValue f;
        using (b.Scope("visual")) f = VisionTower.Emit(b, pixels, plan.Vision);
        b.Output(f, ClipOnnxNames.ImageFeatures, OnnxElementType.Float, ClipOnnxNames.Batch, plan.EmbedDim);
        return b;
    }

    /// <summary><c>input_ids</c> [batch, C] int64 → <c>text_features</c> [batch, E] (unnormalised).</summary>
    public static OnnxGraphBuilder TextEncoder(ClipPlan plan, OnnxWeightSource weights, OnnxBuilderOptions? options = null)
    {
        var b = Start(plan, ClipOnnxKind.Text, weights, options);
        var ids = IdsInput(b, plan, ClipOnnxNames.Batch);
        var f = ClipModule.EmitText(b, ids, plan.Text);
        b.Output(f, ClipOnnxNames.TextFeatures, OnnxElementType.Float, ClipOnnxNames.Batch, plan.EmbedDim);
        return b;
    }

    /// <summary>
    /// Both towers and the logits: inputs <c>pixel_values</c> [image_batch, 3, R, R], <c>input_ids</c> [text_batch, C];
    /// outputs image_features, text_features, logits_per_image [image_batch, text_batch], logits_per_text [text_batch, image_batch].
    /// </summary>
    public static OnnxGraphBuilder Full(ClipPlan plan, OnnxWeightSource weights, OnnxBuilderOptions? options = null)
    {
        var b = Start(plan, ClipOnnxKind.Full, weights, options);
        var pixels = PixelInput(b, plan, ClipOnnxNames.ImageBatch);
        var ids = IdsInput(b, plan, ClipOnnxNames.TextBatch);
        OnnxValue img;
        using (b.Scope("visual")) img = VisionTower.Emit(b, pixels, plan.Vision);
        var txt = ClipModule.EmitText(b, ids, plan.Text);
        var (perImage, perText) = ClipModule.EmitLogits(b, img, txt, plan.LogitBias);
        b.Output(img, ClipOnnxNames.ImageFeatures, OnnxElementType.Float, ClipOnnxNames.ImageBatch, plan.EmbedDim);
        b.Output(txt, ClipOnnxNames.TextFeatures, OnnxElementType.Float, ClipOnnxNames.TextBatch, plan.EmbedDim);
        b.Output(perImage, ClipOnnxNames.LogitsPerImage, OnnxElementType.Float, ClipOnnxNames.ImageBatch, ClipOnnxNames.TextBatch);
        b.Output(perText, ClipOnnxNames.LogitsPerText, OnnxElementType.Float, ClipOnnxNames.TextBatch, ClipOnnxNames.ImageBatch);
        return b;
    }

    /// <summary>
    /// CLIP's head alone: <c>image_features</c> [image_batch, E], <c>text_features</c> [text_batch, E] → logits_per_image,
    /// logits_per_text, with the temperature (stored, before exp) and optional SigLIP bias as weights.
    /// </summary>
    public static OnnxGraphBuilder LogitsHead(int embedDim, float logitScale, float? logitBias = null, OnnxBuilderOptions? options = null) =>
        ClipOnnxHead.Build(embedDim, logitScale, logitBias, options);

    /// <summary>One of the three exports.</summary>
    public static OnnxGraphBuilder Export(ClipOnnxKind kind, ClipPlan plan, OnnxWeightSource weights, OnnxBuilderOptions? options = null) => kind switch
    {
        ClipOnnxKind.Image => ImageEncoder(plan, weights, options),
        ClipOnnxKind.Text => TextEncoder(plan, weights, options),
        ClipOnnxKind.Full => Full(plan, weights, options),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };

    static OnnxValue PixelInput(OnnxGraphBuilder b, ClipPlan plan, string batch) =>
        b.Input(ClipOnnxNames.PixelValues, OnnxElementType.Float, batch, 3, plan.Vision.ImageSize, plan.Vision.ImageSize);

    static OnnxValue IdsInput(OnnxGraphBuilder b, ClipPlan plan, string batch) =>
        b.Input(ClipOnnxNames.InputIds, OnnxElementType.Int64, batch, plan.Text.ContextLength);

    static OnnxGraphBuilder Start(ClipPlan plan, ClipOnnxKind kind, OnnxWeightSource weights, OnnxBuilderOptions? options)
    {
        var b = new OnnxGraphBuilder(options, weights);
        var inv = CultureInfo.InvariantCulture;
        b.Metadata[ClipOnnxNames.MetaFormat] = ClipOnnxNames.FormatVersion;
        b.Metadata[ClipOnnxNames.MetaKind] = kind.ToString().ToLowerInvariant();
        b.Metadata[ClipOnnxNames.MetaEmbedDim] = plan.EmbedDim.ToString(inv);
        b.Metadata[ClipOnnxNames.MetaWeightStorage] = b.Options.WeightStorage.ToString().ToLowerInvariant();
        if (kind != ClipOnnxKind.Text)
        {
            b.Metadata[ClipOnnxNames.MetaVision] = plan.Vision is ResNetPlan ? "resnet" : "vit";
            b.Metadata[ClipOnnxNames.MetaImageSize] = plan.Vision.ImageSize.ToString(inv);
        }
        if (kind != ClipOnnxKind.Image)
        {
            b.Metadata[ClipOnnxNames.MetaContextLength] = plan.Text.ContextLength.ToString(inv);
            b.Metadata[ClipOnnxNames.MetaVocabSize] = plan.Text.VocabSize.ToString(inv);
        }
        var act = kind != ClipOnnxKind.Text && plan.Vision is VitPlan v ? v.Transformer.Block.Mlp.Activation : plan.Text.Transformer.Block.Mlp.Activation;
        b.Metadata[ClipOnnxNames.MetaActivation] = SpecWords.Activation[act];
        return b;
    }
}
