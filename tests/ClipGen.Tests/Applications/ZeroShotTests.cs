using System.Text.Json;
using ClipGen.Applications;
using ClipGen.Backends;
using ClipGen.Imaging;
using ClipGen.Modeling;
using ClipGen.Tests.Models;
using ClipGen.Training;
using Xunit;
using static TorchSharp.torch;

namespace ClipGen.Tests.Applications;

public class ZeroShotTests
{
    const double Tolerance = 1e-5;

    static double[] Softmax(ReadOnlySpan<float> logits)
    {
        double max = double.NegativeInfinity;
        foreach (var l in logits) max = Math.Max(max, l);
        var e = new double[logits.Length];
        double sum = 0;
        for (int i = 0; i < e.Length; i++) sum += e[i] = Math.Exp(logits[i] - max);
        for (int i = 0; i < e.Length; i++) e[i] /= sum;
        return e;
    }

    static double MaxDiff(IReadOnlyList<double> a, IReadOnlyList<double> b)
    {
        Assert.Equal(a.Count, b.Count);
        return a.Zip(b, (x, y) => Math.Abs(x - y)).Max();
    }

    [Theory]
    [InlineData("openai/tiny-vit", BackendKind.Torch)]
    [InlineData("openai/tiny-rn", BackendKind.Torch)]
    [InlineData("openai/tiny-vit", BackendKind.Onnx)]
    [InlineData("openai/tiny-rn", BackendKind.Onnx)]
    public void Probabilities_are_the_softmax_of_the_reference_logits(string folder, BackendKind backend)
    {
        // The fixture's captions as labels with the template "{}" give exactly the fixture's input_ids.
        var captions = AppFixtures.Captions(folder);
        using var pipeline = AppFixtures.Pipeline(folder, backend);
        using var inputs = TestUtil.Read(Fixtures.Path_("reference", folder, "inputs.safetensors"));
        using var outputs = TestUtil.Read(Fixtures.Path_("reference", folder, "outputs.safetensors"));
        using (var ids = pipeline.Tokenize(captions).ToTensor())
        {
            Assert.Equal(inputs.Tensors["input_ids"].shape, ids.shape);
            Assert.True(ids.eq(inputs.Tensors["input_ids"]).all().item<bool>(), "tokens differ from the fixture's input_ids");
        }

        using var classifier = pipeline.CreateClassifier(captions, ["{}"]);
        var results = classifier.Classify(inputs.Tensors["pixel_values"]);
        var logits = outputs.Tensors["logits_per_image"].contiguous().data<float>().ToArray();
        Assert.Equal(3, results.Count);
        for (int i = 0; i < results.Count; i++)
        {
            var expected = Softmax(logits.AsSpan(i * captions.Length, captions.Length));
            var diff = MaxDiff(expected, results[i].Probabilities);
            Assert.True(diff <= Tolerance, $"image {i}: max |diff| {diff:E2}");
            Assert.Equal(captions, results[i].Labels);
        }
    }

    [Theory]
    [InlineData("openai/tiny-vit")]
    [InlineData("openai/tiny-rn")]
    public void Classify_cli_on_image_files_equals_the_library_path(string folder)
    {
        var labels = new[] { "a diagram", "a dog", "a cat", "a cup of coffee" };
        var images = AppFixtures.Images;

        // Reference: preprocess(file) → model.EncodeImage; the prompts' tokens → model.EncodeText; model.Logits; softmax.
        using var model = ClipModelFactory.Load(AppFixtures.ModelOf(folder), AppFixtures.Weights(folder));
        var tokenizer = model.Spec.CreateTokenizer(AppFixtures.Vocab);
        var pre = model.Spec.CreatePreprocessor();
        double[][] expected;
        using (no_grad())
        using (var px = pre.PreprocessToTensor(images))
        using (var ids = TorchSharp.torch.tensor(tokenizer.EncodeBatch(labels.Select(l => $"a photo of a {l}.").ToList(), 77), [labels.Length, 77]))
        using (var img = model.EncodeImage(px))
        using (var txt = model.EncodeText(ids))
        {
            var (perImage, perText) = model.Logits(img, txt);
            using (perImage) using (perText)
            {
                var l = perImage.contiguous().data<float>().ToArray();
                expected = Enumerable.Range(0, images.Length).Select(i => Softmax(l.AsSpan(i * labels.Length, labels.Length))).ToArray();
            }
        }

        var args = new List<string> { "classify", "--model", AppFixtures.ModelOf(folder), "--weights", AppFixtures.Weights(folder), "--vocab", AppFixtures.Vocab,
            "--labels", string.Join(",", labels), "--json" };
        foreach (var i in images) { args.Add("--image"); args.Add(i); }
        var (code, output, err) = TestUtil.Cli([.. args]);
        Assert.True(code == 0, err);
        using var doc = JsonDocument.Parse(output);
        var rows = doc.RootElement.EnumerateArray().ToArray();
        Assert.Equal(images.Length, rows.Length);
        for (int i = 0; i < images.Length; i++)
        {
            Assert.Equal(images[i], rows[i].GetProperty("image").GetString());
            var probs = rows[i].GetProperty("probs").EnumerateObject().ToArray();
            Assert.Equal(labels, probs.Select(p => p.Name));
            var diff = MaxDiff(expected[i], probs.Select(p => p.Value.GetDouble()).ToArray());
            Assert.True(diff <= Tolerance, $"{images[i]}: max |diff| {diff:E2}");
            Assert.Equal(1.0, probs.Sum(p => p.Value.GetDouble()), 6);
        }
    }

    [Fact]
    public void Classify_cli_prints_a_ranked_table()
    {
        var (code, output, err) = TestUtil.Cli("classify", "--model", "tiny-vit", "--weights", AppFixtures.Weights("openai/tiny-vit"), "--vocab", AppFixtures.Vocab,
            "--image", AppFixtures.Images[0], "--labels", "a diagram, a dog ,a cat", "--templates", "ensemble");
        Assert.True(code == 0, err);
        var lines = output.TrimEnd().Split('\n').Select(l => l.TrimEnd('\r')).ToArray();
        Assert.Equal("probabilities: softmax over the labels, as the model was trained (CLIP)", lines[0]);
        Assert.Equal(AppFixtures.Images[0], lines[1]);
        Assert.Equal(3, lines.Length - 2);
        var percents = lines.Skip(2).Select(l => double.Parse(l.Trim().Split('%')[0], System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal(percents.OrderByDescending(p => p), percents);
        Assert.Equal(100, percents.Sum(), 0.5);
        Assert.Equal(["a cat", "a diagram", "a dog"], lines.Skip(2).Select(l => l.Split('%')[1].Trim()).Order());
    }

    [Fact]
    public void Classify_on_a_sigmoid_model_reports_each_labels_own_sigmoid()
    {
        // The SigLIP family fixture (random weights) with the SentencePiece fixture model as its tokenizer.
        var family = Fixtures.Path_("reference", "open_clip", "families", "siglip-b16");
        var spm = Fixtures.Path_("tokenizer", "sentencepiece", "spm.model");
        string[] labels = ["a diagram", "a dog", "a cat"];
        var (code, output, err) = TestUtil.Cli("classify", "--model", "family-siglip-b16", "--weights", family, "--vocab", spm,
            "--image", AppFixtures.Images[0], "--labels", string.Join(",", labels), "--json");
        Assert.True(code == 0, err);
        using var json = System.Text.Json.JsonDocument.Parse(output);
        var result = json.RootElement[0];
        Assert.Equal("sigmoid", result.GetProperty("rule").GetString());
        var probs = labels.Select(l => result.GetProperty("probs").GetProperty(l).GetDouble()).ToArray();

        // Independently: sigmoid(exp(logit_scale)·cos(image, class) + logit_bias) with big_vision's templates, one label at a time.
        using var pipeline = ClipPipeline.Load("family-siglip-b16", family, spm);
        using var classifier = pipeline.CreateClassifier(labels);
        Assert.Equal(ProbabilityRule.Sigmoid, classifier.Rule);
        Assert.Equal(Templates.BigVision, classifier.Templates);
        using var image = pipeline.EmbedImages([AppFixtures.Images[0]]).ToTensor();
        var model = ((ClipGen.Backends.TorchClipBackend)pipeline.Backend).Model;
        double scale = Math.Exp(model.LogitScale.item<float>()), bias = model.LogitBias!.item<float>();
        for (int c = 0; c < labels.Length; c++)
        {
            using var texts = pipeline.EmbedTexts(Templates.BigVision.Select(t => Templates.Format(t, labels[c])).ToList()).ToTensor();
            using var mean = ClipPipeline.Normalize(texts.mean([0], keepdim: true));
            using var img = ClipPipeline.Normalize(image);
            double cos = img.matmul(mean.t()).item<float>();
            Assert.Equal(1 / (1 + Math.Exp(-(scale * cos + bias))), probs[c], 5);
        }
        // Not a softmax: with a bias of −10 these are all far below 1 / 3 and do not add up to 1.
        Assert.True(probs.Sum() < 0.99, string.Join(", ", probs));

        var (code2, text, err2) = TestUtil.Cli("classify", "--model", "family-siglip-b16", "--weights", family, "--vocab", spm,
            "--image", AppFixtures.Images[0], "--labels", string.Join(",", labels));
        Assert.True(code2 == 0, err2);
        Assert.StartsWith("probabilities: sigmoid: each label's own probability", text);
    }

    [Theory]
    [InlineData("torch")]
    [InlineData("onnx")]
    public void Classify_cli_with_concurrent_runs_gives_the_same_probabilities(string backend)
    {
        double[][] Run(params string[] extra)
        {
            var args = new List<string> { "classify", "--model", "tiny-vit", "--weights", AppFixtures.Weights("openai/tiny-vit"), "--vocab", AppFixtures.Vocab,
                "--labels", "a dog,a cat,a diagram", "--json", "--backend", backend };
            foreach (var image in AppFixtures.Images) { args.Add("--image"); args.Add(image); }
            args.AddRange(extra);
            var (code, output, err) = TestUtil.Cli(args.ToArray());
            Assert.True(code == 0, err);
            using var doc = JsonDocument.Parse(output);
            return doc.RootElement.EnumerateArray().Select(r => r.GetProperty("probs").EnumerateObject().Select(p => p.Value.GetDouble()).ToArray()).ToArray();
        }
        var plain = Run();
        int threads = TorchSharp.torch.get_num_threads();
        double[][] split;
        try
        {
            split = Run("--threads", "4", "--concurrent-runs", "2"); // sets libtorch's process-wide threads to 2
        }
        finally
        {
            TorchSharp.torch.set_num_threads(threads);
        }
        Assert.Equal(plain.Length, split.Length);
        for (int i = 0; i < plain.Length; i++) Assert.True(MaxDiff(plain[i], split[i]) <= 1e-6, $"image {i}: {MaxDiff(plain[i], split[i]):E2}");
    }

    [Theory]
    [InlineData("--concurrent-runs", "0", "--concurrent-runs must be a whole number from 1 to")]
    [InlineData("--threads", "two", "--threads must be a whole number from 1 to")]
    [InlineData("--concurrent-runs", "4", "--concurrent-runs 4 is more than --threads 2")]
    public void Bad_thread_options_are_usage_errors(string option, string value, string message)
    {
        var args = new List<string> { "classify", "--model", "tiny-vit", "--weights", AppFixtures.Weights("openai/tiny-vit"), "--vocab", AppFixtures.Vocab,
            "--image", AppFixtures.Images[0], "--labels", "a,b", option, value };
        if (option != "--threads") args.AddRange(["--threads", "2"]);
        var (code, _, err) = TestUtil.Cli(args.ToArray());
        Assert.Equal(2, code);
        Assert.Contains(message, err);
    }

    [Fact]
    public void Classify_cli_reports_an_unreadable_image_and_still_classifies_the_others()
    {
        var dir = Directory.CreateTempSubdirectory("clipgen-classify-").FullName;
        try
        {
            var bad = Path.Combine(dir, "notes.png");
            File.WriteAllText(bad, "not an image");
            var (code, output, err) = TestUtil.Cli("classify", "--model", "tiny-vit", "--weights", AppFixtures.Weights("openai/tiny-vit"), "--vocab", AppFixtures.Vocab,
                "--image", AppFixtures.Images[0], "--image", bad, "--image", AppFixtures.Images[1], "--labels", "a dog,a cat", "--json");
            Assert.Equal(2, code);
            using var doc = JsonDocument.Parse(output);
            Assert.Equal([AppFixtures.Images[0], AppFixtures.Images[1]], doc.RootElement.EnumerateArray().Select(r => r.GetProperty("image").GetString()));
            var lines = err.TrimEnd().Split('\n').Select(l => l.TrimEnd('\r')).ToArray();
            Assert.Contains($"{bad}: not a recognised image", Assert.Single(lines, l => l.StartsWith("error: ", StringComparison.Ordinal)));
            Assert.Equal("1 of 3 image(s) could not be classified; the others are above", lines[^1]);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Prompt_ensemble_matches_OpenAI_and_is_computed_once()
    {
        using var pipeline = AppFixtures.Pipeline("openai/tiny-vit");
        var labels = new[] { "dog", "cat", "red car" };
        using var classifier = pipeline.CreateClassifier(labels, Templates.Ensemble);
        var torchBackend = Assert.IsType<TorchClipBackend>(pipeline.Backend);
        var tokenizer = pipeline.Tokenizer;
        using var expected = Evaluation.ClassEmbeddings(torchBackend.Model, labels, Templates.Ensemble, p => tokenizer.EncodeBatch(p, 77));
        using (var classes = classifier.ClassEmbeddings.ToTensor()) TestUtil.AssertClose(expected, classes, "class embeddings", 1e-6);
        using var inputs = TestUtil.Read(Fixtures.Path_("reference", "openai", "tiny-vit", "inputs.safetensors"));
        classifier.Classify(inputs.Tensors["pixel_values"]);
        classifier.Classify(inputs.Tensors["pixel_values"]);
        Assert.Equal(1, classifier.ClassEmbeddingComputations);
        using var classTensor = classifier.ClassEmbeddings.ToTensor();
        using var norms = classTensor.norm(1);
        Assert.True((norms - 1).abs().max().item<float>() < 1e-6);
    }

    [Fact]
    public void Typed_classifier_takes_the_models_pixels_and_agrees_with_the_untyped_one()
    {
        using var typed = ClipPipeline<TinyVit>.Load(AppFixtures.Weights("openai/tiny-vit"), AppFixtures.Vocab);
        using var untyped = AppFixtures.Pipeline("openai/tiny-vit");
        var captions = AppFixtures.Captions("openai/tiny-vit");
        using var inputs = TestUtil.Read(Fixtures.Path_("reference", "openai", "tiny-vit", "inputs.safetensors"));
        using var pixels = Pixels<TinyVit>.FromTensor(inputs.Tensors["pixel_values"].clone());
        using var typedClassifier = typed.CreateClassifier(captions, ["{}"]);
        using var untypedClassifier = untyped.CreateClassifier(captions, ["{}"]);
        var a = typedClassifier.Classify(pixels);
        var b = untypedClassifier.Classify(inputs.Tensors["pixel_values"]);
        for (int i = 0; i < a.Count; i++) Assert.True(MaxDiff(a[i].Probabilities, b[i].Probabilities) <= 1e-7);

        using ImageEmbeddings<TinyVit> img = typed.EmbedImages(pixels);
        using TextEmbeddings<TinyVit> classes = typedClassifier.ClassEmbeddings();
        using var cos = img.CosineSimilarity(classes);
        Assert.Equal(new long[] { 3, 4 }, cos.shape);
        var viaEmbeddings = typedClassifier.Classify(img);
        for (int i = 0; i < a.Count; i++) Assert.True(MaxDiff(a[i].Probabilities, viaEmbeddings[i].Probabilities) <= 1e-7);
    }

    [Fact]
    public void Embeddings_are_normalised_reference_features()
    {
        using var pipeline = AppFixtures.Pipeline("openai/tiny-vit");
        pipeline.BatchSize = 2; // the fixture has 3 images and 4 texts: batching must not change anything
        using var inputs = TestUtil.Read(Fixtures.Path_("reference", "openai", "tiny-vit", "inputs.safetensors"));
        using var outputs = TestUtil.Read(Fixtures.Path_("reference", "openai", "tiny-vit", "outputs.safetensors"));
        using var img = pipeline.EmbedImages(inputs.Tensors["pixel_values"]);
        using var txt = pipeline.EmbedTexts(AppFixtures.Captions("openai/tiny-vit")).ToTensor();
        using var refImg = ClipPipeline.Normalize(outputs.Tensors["image_features"]);
        using var refTxt = ClipPipeline.Normalize(outputs.Tensors["text_features"]);
        TestUtil.AssertClose(refImg, img, "image embeddings");
        TestUtil.AssertClose(refTxt, txt, "text embeddings");
    }

    [Theory]
    [InlineData("", "--labels is empty")]
    [InlineData("a dog,,a cat", "label 2 is empty")]
    [InlineData("a dog,a cat,a dog", "label 'a dog' is given twice")]
    public void Bad_labels_are_one_line_errors(string labels, string message)
    {
        var (code, output, err) = TestUtil.Cli("classify", "--model", "tiny-vit", "--weights", AppFixtures.Weights("openai/tiny-vit"), "--vocab", AppFixtures.Vocab,
            "--image", AppFixtures.Images[0], "--labels", labels);
        Assert.Equal(2, code);
        Assert.Equal("", output);
        Assert.Contains(message, Assert.Single(err.TrimEnd().Split('\n')));
    }

    [Theory]
    [InlineData("tiny-vitt", "openai/tiny-vit", "unknown model 'tiny-vitt'")]
    [InlineData("tiny-vit", "openai/tiny-rn", "do not fit spec 'tiny-vit'")]
    public void Unknown_model_and_wrong_weights_are_one_line_errors(string model, string weightsOf, string message)
    {
        var (code, _, err) = TestUtil.Cli("classify", "--model", model, "--weights", AppFixtures.Weights(weightsOf), "--vocab", AppFixtures.Vocab,
            "--image", AppFixtures.Images[0], "--labels", "a,b");
        Assert.Equal(2, code);
        Assert.Contains(message, Assert.Single(err.TrimEnd().Split('\n')));
    }

    [Fact]
    public void Bad_templates_and_backends_are_one_line_errors()
    {
        var w = AppFixtures.Weights("openai/tiny-vit");
        var (code, _, err) = TestUtil.Cli("classify", "--model", "tiny-vit", "--weights", w, "--vocab", AppFixtures.Vocab,
            "--image", AppFixtures.Images[0], "--labels", "a,b", "--template", "a photo");
        Assert.Equal(2, code);
        Assert.Contains("has no {} where the label goes", Assert.Single(err.TrimEnd().Split('\n')));
        (code, _, err) = TestUtil.Cli("classify", "--model", "tiny-vit", "--weights", w, "--vocab", AppFixtures.Vocab,
            "--image", AppFixtures.Images[0], "--labels", "a,b", "--backend", "tensorflow");
        Assert.Equal(2, code);
        Assert.Contains("unknown backend 'tensorflow'", Assert.Single(err.TrimEnd().Split('\n')));
    }

    [Fact]
    public void Onnx_backend_classifies_files_like_torch()
    {
        var w = AppFixtures.Weights("openai/tiny-vit");
        double[] Run(string backend)
        {
            var (code, output, err) = TestUtil.Cli("classify", "--model", "tiny-vit", "--weights", w, "--vocab", AppFixtures.Vocab,
                "--image", AppFixtures.Images[0], "--image", AppFixtures.Images[1], "--labels", "a dog,a cat,a diagram", "--backend", backend, "--json");
            Assert.True(code == 0, err);
            using var doc = JsonDocument.Parse(output);
            return doc.RootElement.EnumerateArray().SelectMany(r => r.GetProperty("probs").EnumerateObject().Select(p => p.Value.GetDouble())).ToArray();
        }
        var diff = MaxDiff(Run("torch"), Run("onnx"));
        Assert.True(diff <= Tolerance, $"torch vs onnx: max |diff| {diff:E2}");
    }
}
