using System.Globalization;
using ClipGen.Checkpoints;
using ClipGen.Imaging;
using ClipGen.Modeling;
using ClipGen.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace ClipGen.Cli.Commands;

/// <summary><c>clipgen train</c>: contrastive training or fine-tuning of any spec on image–caption files.</summary>
sealed class TrainCommand : ICommand
{
    public string Name => "train";
    public string Summary => "train or fine-tune a CLIP spec on a CSV of filepath,caption, a folder with sidecar captions, or WebDataset shards";
    public string Usage =>
        "clipgen train --spec <name|spec.yaml> --train <data.csv|folder|\"shards/{00000..00009}.tar\"> [--train-num-samples N] [--shuffle-buffer 1000] --output runs/x [--val val.csv] [--zeroshot-folder DIR] " +
        "[--epochs 10] [--batch-size 64] [--lr 5e-4] [--warmup 100] [--weight-decay 0.2] [--accumulation 1] [--clip-norm 1.0] " +
        "[--seed 0] [--weights W (fine-tune)] [--freeze-image-tower] [--resume | --force] [--vocab FILE] [--image-column filepath] [--caption-column caption] [--threads N]\n" +
        "  An --output that already holds a run is refused unless --resume continues it or --force starts it over.";

    public int Run(CliArgs args, TextWriter stdout, TextWriter stderr)
    {
        var specArg = args.Require("spec");
        var trainPath = args.Require("train");
        var output = args.Require("output");
        var valPath = args.Get("val");
        var zeroShotFolder = args.Get("zeroshot-folder");
        var weights = args.Get("weights");
        var vocab = args.Get("vocab");
        var imageColumn = args.Get("image-column") ?? "filepath";
        var captionColumn = args.Get("caption-column") ?? "caption";
        var resume = args.Has("resume");
        var force = args.Has("force");
        var freeze = args.Has("freeze-image-tower");
        var threads = AppHelpers.ThreadCount(args, "threads", Math.Min(Environment.ProcessorCount, Limits.MaxThreads));
        var numSamplesArg = args.Get("train-num-samples");
        int shuffleBuffer = args.GetInt("shuffle-buffer", 1000);
        var options = new TrainerOptions
        {
            Epochs = args.GetInt("epochs", 10),
            BatchSize = args.GetInt("batch-size", 64),
            LearningRate = args.GetDouble("lr", 5e-4),
            WarmupSteps = args.GetInt("warmup", 100),
            WeightDecay = args.GetDouble("weight-decay", 0.2),
            AccumulationSteps = args.GetInt("accumulation", 1),
            GradClipNorm = args.GetDouble("clip-norm", 1.0),
            Seed = args.GetInt("seed", 0),
            FreezeImageTower = freeze,
            LoaderThreads = Math.Max(1, threads),
        };
        args.RejectUnknown();
        if (resume && force) throw new CliUsageException("give --resume (continue the run in --output) or --force (start it over), not both");

        torch.set_num_threads(Math.Max(1, threads));
        torch.manual_seed(options.Seed);
        var spec = ClipModelFactory.ResolveSpec(specArg);
        using var model = weights is null
            ? ClipModelFactory.Create(spec)
            : ClipModelFactory.Load(spec, weights, new LoadOptions { Logger = new LineLogger(stderr) });
        var tokenizer = spec.CreateTokenizer(vocab);
        var preprocessor = spec.CreatePreprocessor();
        long[] Tokenize(IReadOnlyList<string> texts) => tokenizer.EncodeBatch(texts, spec.Text.ContextLength);

        int? numSamples = numSamplesArg is null ? null
            : int.TryParse(numSamplesArg, NumberStyles.None, CultureInfo.InvariantCulture, out var ns) && ns > 0 ? ns
            : throw new CliUsageException($"--train-num-samples must be a positive whole number, not '{numSamplesArg}'");
        bool shards = Datasets.BraceExpansion.Expand(trainPath).All(p => p.EndsWith(".tar", StringComparison.OrdinalIgnoreCase));
        if (!shards && numSamples is not null) throw new CliUsageException("--train-num-samples applies to WebDataset shards");
        ICaptionDataset train;
        IReadOnlyList<DatasetProblem> problems;
        if (shards)
        {
            var wds = WebDatasetCaptionDataset.Open(trainPath, preprocessor, numSamples, shuffleBuffer);
            // The stream position is the trainer's (epoch, step): a resume must see the same shards and settings.
            WebDatasetResume.Check(output, wds, resume);
            train = wds; problems = wds.Problems;
            stdout.WriteLine($"training {spec.Name} on {wds.Count} samples per epoch from {wds.Shards.Count} shards ({wds.SampleCount} usable samples) in {trainPath}" +
                (problems.Count > 0 ? $" ({problems.Count} samples skipped)" : ""));
        }
        else
        {
            var files = Directory.Exists(trainPath)
                ? FileCaptionDataset.FromFolder(trainPath, preprocessor)
                : FileCaptionDataset.FromCsv(trainPath, preprocessor, imageColumn, captionColumn);
            train = files; problems = files.Problems;
            if (files.Count == 0) throw new ClipGenException($"'{trainPath}' holds no usable image–caption pairs ({problems.Count} rows skipped)");
            stdout.WriteLine($"training {spec.Name} on {files.Count} pairs from {trainPath}" + (problems.Count > 0 ? $" ({problems.Count} bad rows skipped)" : ""));
        }
        foreach (var p in problems) stderr.WriteLine($"skipped {ErrorText.Message(p.ToString())}");

        FileCaptionDataset? val = null;
        if (valPath is not null)
        {
            val = FileCaptionDataset.FromCsv(valPath, preprocessor, imageColumn, captionColumn);
            foreach (var p in val.Problems) stderr.WriteLine($"skipped {ErrorText.Message(p.ToString())}");
        }
        var zeroShot = zeroShotFolder is null ? null : LabelledFolder.Read(zeroShotFolder);

        bool runExists = File.Exists(Path.Combine(output, ClipTrainer.StateFile)) || File.Exists(Path.Combine(output, ClipTrainer.WeightsFile));
        if (!resume && !force && runExists)
            throw new CliUsageException($"'{output}' already holds a training run; continue it with --resume, or pass --force to start it over");
        Directory.CreateDirectory(output);
        var report = new TrainingReport(output);
        if (!resume)
        {
            File.Delete(report.MetricsPath);
            File.Delete(report.PlotPath);
        }
        else if (ClipTrainer.ReadState(output) is { } saved)
            report.Restore(saved.History.Select(h => h.ToReport())); // the whole run: a log line lost to a kill is written again

        // Evaluation images that cannot be read are reported once and left out, like training images.
        var reported = new HashSet<string>(StringComparer.Ordinal);
        List<int> Readable(IReadOnlyList<string> paths)
        {
            var good = new List<int>();
            for (int i = 0; i < paths.Count; i++)
            {
                try { preprocessor.Preprocess(paths[i]); good.Add(i); }
                catch (ClipGenException e) { if (reported.Add(paths[i])) stderr.WriteLine($"skipped {ErrorText.Message(e.Message)}"); }
            }
            return good;
        }
        var trainer = new ClipTrainer(model, options, Tokenize)
        {
            Progress = new ProgressLine(stderr),
            ImageSkipped = (_, reason) => stderr.WriteLine($"skipped {ErrorText.Message(reason)}"),
            Evaluate = (m, r) =>
            {
                if (zeroShot is not null)
                {
                    var all = zeroShot.Images.Select(i => i.Path).ToList();
                    var good = Readable(all);
                    if (good.Count > 0)
                    {
                        using var classes = Evaluation.ClassEmbeddings(m, zeroShot.Labels, ["a photo of a {}."], Tokenize);
                        using var px = preprocessor.PreprocessToTensor(good.Select(i => all[i]).ToList());
                        r.Metrics["zero_shot_accuracy"] = Evaluation.ZeroShotAccuracy(m, classes, px, good.Select(i => zeroShot.Images[i].Label).ToArray());
                    }
                }
                var valGood = val is null ? [] : Readable(Enumerable.Range(0, val.Count).Select(val.ImagePath).ToList());
                if (val is not null && valGood.Count > 0)
                {
                    using var scope = NewDisposeScope();
                    var paths = valGood.Select(val.ImagePath).ToList();
                    var captions = valGood.Select(val.Caption).ToList();
                    var img = m.EncodeImage(preprocessor.PreprocessToTensor(paths));
                    var txt = m.EncodeText(TensorArrays.FromArray(Tokenize(captions), [captions.Count, spec.Text.ContextLength]));
                    foreach (var k in new[] { 1, 5 })
                    {
                        var (i2t, t2i) = Evaluation.RecallAtK(img, txt, k);
                        r.Metrics[$"image_to_text_recall@{k}"] = i2t;
                        r.Metrics[$"text_to_image_recall@{k}"] = t2i;
                    }
                }
            },
        };
        trainer.EpochCompleted = r =>
        {
            report.Add(r);
            stdout.WriteLine(FormattableString.Invariant($"epoch {r.Epoch + 1}/{options.Epochs}: loss {r.TrainLoss:F4}, {r.ImagesPerSecond:F0} img/s") +
                string.Concat(r.Metrics.Select(kv => FormattableString.Invariant($", {kv.Key} {kv.Value:F3}"))));
        };

        using var cts = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; cts.Cancel(); };
        Console.CancelKeyPress += onCancel;
        TrainerState state;
        try { state = trainer.Train(data: train, outputDir: output, resume: resume, cancel: cts.Token, overwrite: force); }
        finally { Console.CancelKeyPress -= onCancel; }
        if (!state.Finished)
        {
            stderr.WriteLine($"interrupted at epoch {state.Epoch + 1}, step {state.StepInEpoch}; checkpoint saved. Continue with the same command and --resume.");
            return 130;
        }
        stdout.WriteLine($"done: {state.GlobalStep} steps; weights and optimizer state in {Path.Combine(output, ClipTrainer.WeightsFile)}, metrics {report.MetricsPath}, curves {report.PlotPath}");
        return 0;
    }
}
