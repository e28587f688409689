using ClipGen.Specs;

namespace ClipGen.Applications;

/// <summary>Prompt templates for zero-shot classification; <c>{}</c> stands for the label.</summary>
public static class Templates
{
    /// <summary>The one template CLIP's paper starts from.</summary>
    public static IReadOnlyList<string> Single { get; } = ["a photo of a {}."];

    /// <summary>A small ensemble in our own wording, for photos of everyday things.</summary>
    public static IReadOnlyList<string> Ensemble { get; } =
    [
        "a photo of a {}.",
        "a picture showing a {}.",
        "a snapshot of the {}.",
        "an image that contains a {}.",
        "a close view of a {}.",
        "a {} seen from a distance.",
        "a drawing of a {}.",
        "a low-resolution photo of a {}.",
    ];

    /// <summary>
    /// big_vision's <c>clip_best</c> prompts, the ones its SigLIP zero-shot evaluations use, canonicalized as big_vision does
    /// (lower case, no punctuation): the default for sigmoid-loss models.
    /// </summary>
    public static IReadOnlyList<string> BigVision { get; } =
    [
        "itap of a {}",
        "a bad photo of the {}",
        "a origami {}",
        "a photo of the large {}",
        "a {} in a video game",
        "art of the {}",
        "a photo of the small {}",
    ];

    /// <summary>The default templates of a model's family: <see cref="BigVision"/> for SigLIP (sigmoid loss), <see cref="Single"/> otherwise.</summary>
    public static IReadOnlyList<string> Default(ClipSpec spec) => spec.Loss == LossKind.SigLip ? BigVision : Single;

    /// <summary>Templates from a text file: one per line; blank lines and lines starting with <c>#</c> are ignored.</summary>
    public static IReadOnlyList<string> Load(string path)
    {
        string[] lines;
        try { lines = File.ReadAllLines(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new ClipGenException($"cannot read the templates file '{path}': {e.Message}", e); }
        var result = lines.Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();
        if (result.Count == 0) throw new ClipGenException($"templates file '{path}' holds no templates (one per line, with {{}} for the label)");
        Validate(result);
        return result;
    }

    /// <summary>Every template must be non-empty and contain <c>{}</c>; duplicates are an error.</summary>
    public static void Validate(IReadOnlyList<string> templates)
    {
        ArgumentNullException.ThrowIfNull(templates);
        if (templates.Count == 0) throw new ClipGenException("no prompt templates given");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var t in templates)
        {
            if (t is null || !t.Contains("{}", StringComparison.Ordinal))
                throw new ClipGenException($"template '{t}' has no {{}} where the label goes (e.g. \"a photo of a {{}}.\")");
            if (!seen.Add(t)) throw new ClipGenException($"template '{t}' is given twice");
        }
    }

    /// <summary>The prompt for one label: every <c>{}</c> replaced by it (Python's <c>str.format</c> with one argument).</summary>
    public static string Format(string template, string label) => template.Replace("{}", label, StringComparison.Ordinal);
}

/// <summary>One label and its probability.</summary>
public readonly record struct LabelScore(string Label, double Probability);

/// <summary>How a zero-shot classifier turns logits into probabilities: the rule the model was trained with.</summary>
public enum ProbabilityRule
{
    /// <summary>CLIP (InfoNCE): a softmax over the labels; the probabilities add up to 1.</summary>
    Softmax,
    /// <summary>SigLIP (sigmoid loss): sigmoid(logit_scale·cos + logit_bias) for each label on its own; they need not add up to 1.</summary>
    Sigmoid,
}

/// <summary>The zero-shot result for one image.</summary>
/// <param name="Image">The image's path, when it came from a file.</param>
/// <param name="Labels">The classifier's labels, in their order.</param>
/// <param name="Probabilities">Each label's probability under <paramref name="Rule"/>, in the labels' order.</param>
/// <param name="Rule">Softmax over the labels (CLIP) or each label's own sigmoid (SigLIP).</param>
public sealed record ZeroShotResult(string? Image, IReadOnlyList<string> Labels, IReadOnlyList<double> Probabilities, ProbabilityRule Rule = ProbabilityRule.Softmax)
{
    /// <summary>Labels by decreasing probability (ties keep the labels' order).</summary>
    public IReadOnlyList<LabelScore> Ranked =>
        Labels.Select((l, i) => new LabelScore(l, Probabilities[i])).OrderByDescending(s => s.Probability).ToList();

    /// <summary>The most probable label.</summary>
    public LabelScore Top => Ranked[0];
}

/// <summary>
/// CLIP zero-shot classification. Each class is embedded as OpenAI did: the normalised text embeddings of every
/// template filled with the label, averaged, then normalised again. Class embeddings are computed once, on first
/// use. Probabilities follow the rule the model was trained with (<see cref="Rule"/>): <c>softmax(exp(logit_scale) · cos)</c>
/// over the labels for CLIP, <c>sigmoid(exp(logit_scale) · cos + logit_bias)</c> for each label of a SigLIP model.
/// </summary>
public sealed class ZeroShotClassifier : IDisposable
{
    readonly ClipPipeline _pipeline;
    readonly Lazy<ArrayTensor<float>> _classEmbeddings;

    /// <summary>
    /// A classifier over <paramref name="labels"/> (non-empty, none blank, no duplicates) with
    /// <paramref name="templates"/> (default: the family's, <see cref="Templates.Default"/>). The pipeline is not owned.
    /// </summary>
    public ZeroShotClassifier(ClipPipeline pipeline, IReadOnlyList<string> labels, IReadOnlyList<string>? templates = null)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        _pipeline = pipeline;
        Labels = ValidateLabels(labels);
        Templates = (templates ?? Applications.Templates.Default(pipeline.Spec)).ToArray();
        Rule = pipeline.Spec.Loss == LossKind.SigLip ? ProbabilityRule.Sigmoid : ProbabilityRule.Softmax;
        Applications.Templates.Validate(Templates);
        _classEmbeddings = new Lazy<ArrayTensor<float>>(ComputeClassEmbeddings, LazyThreadSafetyMode.ExecutionAndPublication);
    }

    public IReadOnlyList<string> Labels { get; }
    public IReadOnlyList<string> Templates { get; }

    /// <summary>How logits become probabilities: the rule the model was trained with (its spec's <c>loss</c>).</summary>
    public ProbabilityRule Rule { get; }
    public ClipPipeline Pipeline => _pipeline;

    /// <summary>How often the class embeddings were computed (0 or 1).</summary>
    public int ClassEmbeddingComputations { get; private set; }

    /// <summary>The class embeddings [classes, D], unit rows; computed on first use and kept (do not modify).</summary>
    public ArrayTensor<float> ClassEmbeddings => _classEmbeddings.Value;

    /// <summary>Labels must be a non-empty list of distinct, non-blank strings.</summary>
    public static IReadOnlyList<string> ValidateLabels(IReadOnlyList<string>? labels)
    {
        if (labels is null || labels.Count == 0) throw new ClipGenException("no labels given: pass at least one class label");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < labels.Count; i++)
        {
            var l = labels[i];
            if (string.IsNullOrWhiteSpace(l)) throw new ClipGenException($"label {i + 1} is empty");
            if (!seen.Add(l)) throw new ClipGenException($"label '{l}' is given twice");
        }
        return labels.ToArray();
    }

    ArrayTensor<float> ComputeClassEmbeddings()
    {
        ClassEmbeddingComputations++;
        var prompts = Labels.SelectMany(l => Templates.Select(t => Applications.Templates.Format(t, l))).ToList();
        var emb = _pipeline.EmbedTexts(prompts); // [C·T, D], unit rows
        int c = Labels.Count, t = Templates.Count, d = (int)emb.Dim(1);
        var mean = new float[(long)c * d];
        var sum = new double[d];
        for (int k = 0; k < c; k++)
        {
            Array.Clear(sum);
            for (int j = 0; j < t; j++)
            {
                var row = emb.Row(k * t + j);
                for (int x = 0; x < d; x++) sum[x] += row[x];
            }
            for (int x = 0; x < d; x++) mean[k * d + x] = (float)(sum[x] / t);
        }
        return ClipPipeline.Normalize(new ArrayTensor<float>(mean, c, d));
    }

    /// <summary>Logits [N, classes] of image embeddings [N, D]: the backend's CLIP logits, exp(logit_scale) · cos.</summary>
    public ArrayTensor<float> LogitsOfEmbeddings(ArrayTensor<float> imageEmbeddings) => _pipeline.Backend.Logits(imageEmbeddings, ClassEmbeddings).PerImage;

    /// <summary>Logits [N, classes] of preprocessed pixels [N, 3, R, R].</summary>
    public ArrayTensor<float> Logits(ArrayTensor<float> pixelValues) => LogitsOfEmbeddings(_pipeline.EmbedImages(pixelValues));

    /// <summary>Probabilities per image (under <see cref="Rule"/>) of normalised image embeddings [N, D].</summary>
    public IReadOnlyList<ZeroShotResult> ClassifyEmbeddings(ArrayTensor<float> imageEmbeddings, IReadOnlyList<string?>? images = null)
    {
        var logits = LogitsOfEmbeddings(imageEmbeddings);
        int n = logits.Rows, c = Labels.Count;
        var results = new ZeroShotResult[n];
        for (int i = 0; i < n; i++)
        {
            var row = logits.Row(i);
            var p = new double[c];
            if (Rule == ProbabilityRule.Sigmoid)
            {
                for (int k = 0; k < c; k++) p[k] = 1.0 / (1.0 + Math.Exp(-(double)row[k]));
            }
            else
            {
                double max = double.NegativeInfinity, total = 0;
                for (int k = 0; k < c; k++) max = Math.Max(max, row[k]);
                for (int k = 0; k < c; k++) total += p[k] = Math.Exp(row[k] - max);
                for (int k = 0; k < c; k++) p[k] /= total;
            }
            results[i] = new ZeroShotResult(images?[i], Labels, p, Rule);
        }
        return results;
    }

    /// <summary>Classifies preprocessed pixels [N, 3, R, R].</summary>
    public IReadOnlyList<ZeroShotResult> Classify(ArrayTensor<float> pixelValues) => ClassifyEmbeddings(_pipeline.EmbedImages(pixelValues));

    /// <summary>Classifies image files (an unreadable image is a <see cref="ClipGenException"/>).</summary>
    public IReadOnlyList<ZeroShotResult> Classify(IReadOnlyList<string> imagePaths) => ClassifyEmbeddings(_pipeline.EmbedImages(imagePaths), imagePaths);

    /// <summary><see cref="Classify(IReadOnlyList{string})"/> off the calling thread, cancellable between batches.</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async Task<IReadOnlyList<ZeroShotResult>> ClassifyAsync(IReadOnlyList<string> imagePaths, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(imagePaths);
        var embeddings = await _pipeline.EmbedImagesAsync(imagePaths, cancellationToken).ConfigureAwait(false);
        return ClassifyEmbeddings(embeddings, imagePaths);
    }

    /// <summary>Classifies one image file.</summary>
    public ZeroShotResult Classify(string imagePath) => Classify([imagePath])[0];

    /// <summary>Nothing to release (the class embeddings are managed arrays); kept so that callers may use <c>using</c>.</summary>
    public void Dispose() { }
}
