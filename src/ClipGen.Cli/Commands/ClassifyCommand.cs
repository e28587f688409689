using System.CommandLine;
using System.Text.Json;
using ClipGen.Applications;

namespace ClipGen.Cli.Commands;

/// <summary><c>clipgen classify</c>: zero-shot classification of image files against text labels.</summary>
sealed class ClassifyCommand : CliCommand
{
    readonly ModelOptionSet _model;
    readonly Option<string[]> _images;
    readonly Option<string?> _labels;
    readonly Option<string[]> _template;
    readonly Option<string?> _templates;
    readonly Option<bool> _json;

    public ClassifyCommand() : base("classify", "zero-shot classify images against labels (probabilities per image)")
    {
        _model = new ModelOptionSet(this);
        _images = Required(CliOptions.Many("--image", "FILE", "an image to classify; repeat for more"));
        _labels = Required(CliOptions.Text("--labels", "\"a diagram,a dog,a cat\"", "comma-separated class labels. Probabilities follow the model's training: a softmax over the labels (CLIP), or each label's own sigmoid (SigLIP)"));
        _template = Add(CliOptions.Many("--template", "\"a photo of a {}.\"", "a prompt template; repeat for an ensemble"));
        _templates = Add(CliOptions.Text("--templates", "FILE|single|ensemble|big_vision", "a file of templates (one a line), or a built-in set (default: the model family's: single for CLIP, big_vision for SigLIP)"));
        _json = Add(CliOptions.Flag("--json", "print the probabilities as JSON"));
    }

    public override int Run(ParseResult args, TextWriter stdout, TextWriter stderr)
    {
        var model = _model.Read(args);
        IReadOnlyList<string> images = args.GetValue(_images) ?? [];
        var labelsArg = Value(args, _labels);
        IReadOnlyList<string> templateArgs = args.GetValue(_template) ?? [];
        var templatesArg = args.GetValue(_templates);
        bool json = args.GetValue(_json);

        if (images.Count == 0) throw new CliUsageException("give at least one --image");
        var labels = ParseLabels(labelsArg);
        if (templateArgs.Count > 0 && templatesArg is not null) throw new CliUsageException("give --template or --templates, not both");
        IReadOnlyList<string>? templates = templatesArg switch
        {
            null => templateArgs.Count > 0 ? templateArgs : null,
            _ when File.Exists(templatesArg) => Templates.Load(templatesArg),
            "single" => Templates.Single,
            "ensemble" => Templates.Ensemble,
            "big_vision" => Templates.BigVision,
            _ => throw new ClipGenException($"templates file not found: {templatesArg} (or use 'single', 'ensemble' or 'big_vision')"),
        };
        if (templates is not null) Templates.Validate(templates);
        foreach (var img in images)
            if (!File.Exists(img)) throw new ClipGenException($"{img}: file not found");

        using var pipeline = AppHelpers.Load(model, stderr);
        using var classifier = pipeline.CreateClassifier(labels, templates);
        var rule = classifier.Rule == ProbabilityRule.Sigmoid
            ? "sigmoid: each label's own probability, as the model was trained (SigLIP); they need not add up to 100 %"
            : "softmax over the labels, as the model was trained (CLIP)";
        var (results, failures) = ClassifyEach(classifier, images);
        foreach (var f in failures) stderr.WriteLine($"error: {f.ReplaceLineEndings(" ")}");

        if (json)
        {
            using var ms = new MemoryStream();
            using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
            {
                w.WriteStartArray();
                foreach (var r in results)
                {
                    w.WriteStartObject();
                    w.WriteString("image", r.Image);
                    w.WriteString("rule", r.Rule == ProbabilityRule.Sigmoid ? "sigmoid" : "softmax");
                    w.WriteStartObject("probs");
                    for (int i = 0; i < r.Labels.Count; i++) w.WriteNumber(r.Labels[i], r.Probabilities[i]);
                    w.WriteEndObject();
                    w.WriteEndObject();
                }
                w.WriteEndArray();
            }
            stdout.WriteLine(System.Text.Encoding.UTF8.GetString(ms.ToArray()));
        }
        else
        {
            stdout.WriteLine($"probabilities: {rule}");
            foreach (var r in results)
            {
                stdout.WriteLine(r.Image);
                foreach (var s in r.Ranked) stdout.WriteLine($"  {AppHelpers.Percent(s.Probability)}  {s.Label}");
            }
        }
        if (failures.Count > 0)
        {
            stderr.WriteLine($"{failures.Count} of {images.Count} image(s) could not be classified; the others are above");
            return 2;
        }
        return 0;
    }

    /// <summary>
    /// Classifies all images in one batch; if any image is unreadable, classifies them one at a time so that the readable
    /// ones still get their results and each unreadable one gets its own error.
    /// </summary>
    static (IReadOnlyList<ZeroShotResult> Results, IReadOnlyList<string> Failures) ClassifyEach(ZeroShotClassifier classifier, IReadOnlyList<string> images)
    {
        try
        {
            return (classifier.Classify(images), []);
        }
        catch (ClipGenException) when (images.Count > 1)
        {
            var results = new List<ZeroShotResult>();
            var failures = new List<string>();
            foreach (var image in images)
            {
                try { results.Add(classifier.Classify(image)); }
                catch (ClipGenException e) { failures.Add(e.Message); }
            }
            return (results, failures);
        }
    }

    /// <summary>Comma-separated labels, trimmed; an empty or repeated label is an error.</summary>
    internal static IReadOnlyList<string> ParseLabels(string text)
    {
        var labels = text.Split(',').Select(l => l.Trim()).ToList();
        if (labels.All(l => l.Length == 0)) throw new ClipGenException("--labels is empty: give comma-separated class labels, e.g. --labels \"a dog,a cat\"");
        for (int i = 0; i < labels.Count; i++)
            if (labels[i].Length == 0) throw new ClipGenException($"--labels: label {i + 1} is empty (two commas in a row, or a comma at an end)");
        return ZeroShotClassifier.ValidateLabels(labels);
    }
}
