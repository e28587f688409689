using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using ClipGen.Backends;
using ClipGen.Demo;
using ClipGen.Onnx;
using ClipGen.Modeling;
using ClipGen.Models;
using ClipGen.Text;
using ClipGen.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace ClipGen.Cli.Commands;

/// <summary>
/// <c>clipgen demo</c>: trains the small <c>demo-tiny</c> spec from scratch on synthetic captioned shapes, then
/// classifies held-out images zero-shot with prompts it never saw verbatim, and writes plots and metrics.
/// </summary>
sealed class DemoCommand : CliCommand
{
    readonly Option<string?> _output = CliOptions.Text("--output", "DIR", "where samples, weights, metrics, curves and the ONNX export go (default runs/demo)");
    readonly Option<int> _epochs = CliOptions.Int("--epochs", 10, "passes over the synthetic training set", min: 1);
    readonly Option<int> _trainSize = CliOptions.Int("--train-size", 8000, "synthetic training images", min: 1);
    readonly Option<int> _testSize = CliOptions.Int("--test-size", 600, "held-out images", min: 1);
    readonly Option<int> _batch = CliOptions.Int("--batch-size", 128, "images per step", min: 1);
    readonly Option<double> _lr = CliOptions.Number("--lr", 2e-3, "peak learning rate");
    readonly Option<int> _seed = CliOptions.Int("--seed", 1, "seed of the data and the initial weights");
    readonly Option<int?> _threads = CliOptions.Threads("--threads", "TorchSharp's threads and the image loaders (default: one per processor)");

    public DemoCommand() : base("demo", "train a small CLIP from scratch on synthetic shapes, then classify held-out images zero-shot")
    {
        foreach (var o in new Option[] { _output, _epochs, _trainSize, _testSize, _batch, _lr, _seed, _threads }) Add(o);
    }

    /// <summary>Zero-shot prompt templates: none of them is a training caption's wording.</summary>
    public static readonly string[] Templates = ["a picture of a {}.", "an image showing a {}.", "a {} on a plain background.", "this is a {}."];

    public override int Run(ParseResult args, TextWriter stdout, TextWriter stderr)
    {
        var output = args.GetValue(_output) ?? Path.Combine("runs", "demo");
        var epochs = args.GetValue(_epochs);
        var trainSize = args.GetValue(_trainSize);
        var heldOut = args.GetValue(_testSize);
        var batch = args.GetValue(_batch);
        var lr = args.GetValue(_lr);
        var seed = args.GetValue(_seed);
        var threads = args.GetValue(_threads) ?? Math.Min(Environment.ProcessorCount, Limits.MaxThreads);

        var total = Stopwatch.StartNew();
        torch.set_num_threads(threads);
        torch.manual_seed(seed);
        Directory.CreateDirectory(output);
        var metrics = Path.Combine(output, "metrics.jsonl");
        if (File.Exists(metrics)) File.Delete(metrics);

        using var model = new DemoTiny();
        var spec = DemoTiny.ModelSpec;
        var tokenizer = spec.CreateTokenizer();
        long[] Tokenize(IReadOnlyList<string> texts) => tokenizer.EncodeBatch(texts, spec.Text.ContextLength);

        var train = new SyntheticShapes(trainSize, spec.Vision.ImageSize, seed, spec.Preprocess);
        var test = new SyntheticShapes(heldOut, spec.Vision.ImageSize, seed + 7777, spec.Preprocess);
        var samples = Path.Combine(output, "samples");
        Directory.CreateDirectory(samples);
        for (int i = 0; i < 8; i++) train.SavePng(i, Path.Combine(samples, $"train-{i}.png"));
        stdout.WriteLine($"ClipGen demo: {spec.Name} ({DemoTiny.ParameterCount:N0} parameters, {spec.Tokenizer.Kind} tokenizer), {trainSize} synthetic training images, {heldOut} held-out.");
        stdout.WriteLine($"  e.g. \"{train.Caption(0)}\", \"{train.Caption(1)}\" (samples in {samples})");

        // Held-out evaluation set, built once.
        var testPixels = new float[heldOut * 3 * spec.Vision.ImageSize * spec.Vision.ImageSize];
        var testLabels = new int[heldOut];
        int per = 3 * spec.Vision.ImageSize * spec.Vision.ImageSize;
        for (int i = 0; i < heldOut; i++)
        {
            test.LoadImage(i, testPixels.AsSpan(i * per, per), null);
            testLabels[i] = SyntheticShapes.LabelIndex(test.Scene(i));
        }
        using var testTensor = TensorArrays.FromArray(testPixels, [heldOut, 3, spec.Vision.ImageSize, spec.Vision.ImageSize]);

        var report = new TrainingReport(output);
        var options = new TrainerOptions
        {
            Epochs = epochs, BatchSize = batch, LearningRate = lr, WarmupSteps = 40, WeightDecay = 0.1, Seed = seed,
            LoaderThreads = Math.Max(1, threads),
        };
        var lines = new ProgressLine(stderr);
        var trainer = new ClipTrainer(model, options, Tokenize)
        {
            Progress = lines,
            Evaluate = (m, r) =>
            {
                using var classes = Evaluation.ClassEmbeddings(m, SyntheticShapes.Labels, Templates, Tokenize);
                r.Metrics["zero_shot_accuracy"] = Evaluation.ZeroShotAccuracy(m, classes, testTensor, testLabels);
            },
        };
        trainer.EpochCompleted = r =>
        {
            report.Add(r);
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"epoch {r.Epoch + 1,2}/{epochs}: loss {r.TrainLoss:F3}, held-out zero-shot accuracy {r.Metrics.GetValueOrDefault("zero_shot_accuracy"):P1}, {r.ImagesPerSecond:F0} img/s"));
        };
        var trainTime = Stopwatch.StartNew();
        using var cts = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; cts.Cancel(); };
        Console.CancelKeyPress += onCancel;
        try { lines.Run(() => trainer.Train(train, Path.Combine(output, "checkpoint"), cancel: cts.Token, overwrite: true)); } // the demo always starts over
        finally { Console.CancelKeyPress -= onCancel; }
        trainTime.Stop();
        if (cts.IsCancellationRequested) { stderr.WriteLine($"interrupted; checkpoint saved in {Path.Combine(output, "checkpoint")}"); return 130; }

        // Final zero-shot evaluation with a per-class breakdown.
        model.eval();
        double accuracy;
        var perClass = new int[SyntheticShapes.Labels.Count];
        var perClassTotal = new int[SyntheticShapes.Labels.Count];
        using (no_grad())
        {
            using var classes = Evaluation.ClassEmbeddings(model, SyntheticShapes.Labels, Templates, Tokenize);
            using var img = model.EncodeImage(testTensor);
            using var norm = img / img.norm(1, keepdim: true);
            using var logits = norm.matmul(classes.t());
            var pred = logits.argmax(1).data<long>().ToArray();
            for (int i = 0; i < heldOut; i++)
            {
                perClassTotal[testLabels[i]]++;
                if (pred[i] == testLabels[i]) perClass[testLabels[i]]++;
            }
            accuracy = (double)perClass.Sum() / heldOut;
        }
        stdout.WriteLine();
        stdout.WriteLine($"Zero-shot classification of {heldOut} held-out images into {SyntheticShapes.Labels.Count} classes, prompts: {string.Join(" | ", Templates)}");
        for (int c = 0; c < perClass.Length; c++)
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {SyntheticShapes.Labels[c],-16} {perClass[c],4}/{perClassTotal[c],-4} {(perClassTotal[c] == 0 ? 0 : (double)perClass[c] / perClassTotal[c]),7:P1}"));
        var weights = Path.Combine(output, "demo-tiny.safetensors");
        IO.TensorFiles.SaveSafetensors(weights, model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value));

        // Export to ONNX and check that ONNX Runtime agrees with TorchSharp on the held-out images and the prompts.
        var onnxDir = Path.Combine(output, "onnx");
        var files = ClipOnnxExporter.Export(model, ClipOnnxKind.All, onnxDir);
        double maxImageDiff, maxTextDiff, onnxAccuracy, int8Accuracy, int8Cosine;
        using (no_grad())
        using (var torchBackend = ClipBackends.Create((ClipModule)model, BackendKind.Torch))
        using (var onnxBackend = ClipBackends.Create((ClipModule)model, BackendKind.Onnx, new ClipBackendOptions { OnnxDirectory = onnxDir }))
        using (var int8Backend = ClipBackends.Create((ClipModule)model, BackendKind.Onnx, new ClipBackendOptions { Precision = OnnxPrecision.Int8 }))
        {
            var prompts = SyntheticShapes.Labels.SelectMany(l => Templates.Select(t => t.Replace("{}", l, StringComparison.Ordinal))).ToList();
            using var ids = TensorArrays.FromArray(Tokenize(prompts), [prompts.Count, spec.Text.ContextLength]);
            using var ti = torchBackend.EncodeImage(testTensor);
            using var oi = onnxBackend.EncodeImage(testTensor);
            using var tt = torchBackend.EncodeText(ids);
            using var ot = onnxBackend.EncodeText(ids);
            maxImageDiff = (ti - oi).abs().max().item<float>() / Math.Max(1e-12, ti.abs().max().item<float>());
            maxTextDiff = (tt - ot).abs().max().item<float>() / Math.Max(1e-12, tt.abs().max().item<float>());
            // Zero-shot through ONNX Runtime, fp32 and int8: class embeddings from the ONNX text features (same prompt ensemble).
            onnxAccuracy = Evaluation.ZeroShotAccuracy(onnxBackend, SyntheticShapes.Labels, Templates, Tokenize, testTensor, testLabels);
            int8Accuracy = Evaluation.ZeroShotAccuracy(int8Backend, SyntheticShapes.Labels, Templates, Tokenize, testTensor, testLabels);
            using var qi = int8Backend.EncodeImage(testTensor);
            using var qt = int8Backend.EncodeText(ids);
            int8Cosine = Math.Min(nn.functional.cosine_similarity(oi, qi, 1).min().item<float>(), nn.functional.cosine_similarity(ot, qt, 1).min().item<float>());
        }
        stdout.WriteLine();
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"ONNX export: {string.Join(", ", files.Select(Path.GetFileName))} in {onnxDir}; ONNX Runtime vs TorchSharp max relative difference: image {maxImageDiff:E1}, text {maxTextDiff:E1}; zero-shot accuracy through ONNX Runtime {onnxAccuracy:P1}"));
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"ONNX Runtime int8: zero-shot accuracy {int8Accuracy:P1} ({100 * (int8Accuracy - onnxAccuracy):+0.0;-0.0;0.0} points against fp32), lowest cosine(int8, fp32) over the held-out images and prompts {int8Cosine:F5}"));

        stdout.WriteLine();
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"accuracy {accuracy:P1} (bar: 90%) | training {trainTime.Elapsed.TotalSeconds:F0} s | total {total.Elapsed.TotalSeconds:F0} s"));
        stdout.WriteLine($"weights {weights} | metrics {report.MetricsPath} | curves {report.PlotPath}");
        return accuracy >= 0.9 ? 0 : 3;
    }
}
