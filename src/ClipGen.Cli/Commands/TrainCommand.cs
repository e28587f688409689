using System.CommandLine;
using ClipGen.Checkpoints;
using ClipGen.Imaging;
using ClipGen.Modeling;
using ClipGen.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace ClipGen.Cli.Commands;

/// <summary><c>clipgen train</c>: contrastive training or fine-tuning of any spec on image–caption files.</summary>
sealed class TrainCommand : CliCommand
{
    readonly Option<string?> _spec, _train, _output, _val, _zeroShotFolder, _weights, _vocab, _imageColumn, _captionColumn;
    readonly Option<string?> _logs, _name;
    readonly Option<int?> _numSamples, _threads, _workers;
    readonly Option<int> _shuffleBuffer, _epochs, _batchSize, _warmup, _accumulation, _seed, _saveFrequency, _zeroShotFrequency;
    readonly Option<string[]> _reportTo;
    readonly Option<double> _lr, _weightDecay, _clipNorm;
    readonly Option<bool> _freeze, _resume, _force;

    public TrainCommand() : base("train", "train or fine-tune a CLIP spec on a CSV of filepath,caption, a folder with sidecar captions, or WebDataset shards")
    {
        var defaults = new TrainerOptions();
        // The aliases are open_clip's names (python -m open_clip_train.main …), so that its command line runs here (docs/training.md).
        _spec = Required(CliOptions.Text("--spec", "name|spec.yaml", "the model to train", "--model"));
        _train = Required(CliOptions.Text("--train", "data.csv|folder|\"shards/{00000..00009}.tar\"", "the training data", "--train-data"));
        _numSamples = Add(CliOptions.OptionalInt("--train-num-samples", "samples per epoch from WebDataset shards (default: all)", min: 1));
        _shuffleBuffer = Add(CliOptions.Int("--shuffle-buffer", 1000, "samples shuffled together when streaming shards", min: 1));
        _output = Add(CliOptions.Text("--output", "DIR", "the run's folder: checkpoint, metrics.jsonl, curves.png (default: --logs/--name)"));
        _logs = Add(CliOptions.Text("--logs", "DIR", "without --output: the run goes to DIR/NAME (default ./logs), as open_clip's"));
        _name = Add(CliOptions.Text("--name", "NAME", "without --output: the run's folder under --logs (default: date-model_M-lr_LR-b_B-j_W)"));
        _val = Add(CliOptions.Text("--val", "val.csv", "image–text retrieval recall@1/5 on this CSV after each epoch", "--val-data"));
        _zeroShotFolder = Add(CliOptions.Text("--zeroshot-folder", "DIR",
            "zero-shot top-1 and top-5 accuracy on a folder per class (its names are the labels), every --zeroshot-frequency epochs", "--imagenet-val"));
        _zeroShotFrequency = Add(CliOptions.Int("--zeroshot-frequency", 1, "run the zero-shot evaluation every N epochs (and after the last)", min: 1));
        _saveFrequency = Add(CliOptions.Int("--save-frequency", 0, "also keep the weights of every N-th epoch as checkpoints/epoch_E.safetensors (0: only the latest checkpoint)", min: 0));
        _reportTo = Add(CliOptions.Many("--report-to", "tensorboard|none", "tensorboard: write TensorBoard event files into OUTPUT/tensorboard (tensorboard --logdir OUTPUT/tensorboard)"));
        _epochs = Add(CliOptions.Int("--epochs", defaults.Epochs, "passes over the training data", min: 1));
        _batchSize = Add(CliOptions.Int("--batch-size", defaults.BatchSize, "image–caption pairs per step", min: 1));
        _lr = Add(CliOptions.Number("--lr", defaults.LearningRate, "peak learning rate"));
        _warmup = Add(CliOptions.Int("--warmup", defaults.WarmupSteps, "linear warm-up steps", min: 0));
        _weightDecay = Add(CliOptions.Number("--weight-decay", defaults.WeightDecay, "AdamW weight decay", "--wd"));
        _accumulation = Add(CliOptions.Int("--accumulation", defaults.AccumulationSteps, "micro-batches per optimiser step", min: 1));
        _clipNorm = Add(CliOptions.Number("--clip-norm", defaults.GradClipNorm, "gradient norm clip (0: off)"));
        _seed = Add(CliOptions.Int("--seed", defaults.Seed, "seed of the initial weights, the data order and the augmentation"));
        _weights = Add(CliOptions.Text("--weights", "W", "fine-tune from these weights (default: random initial weights)"));
        _freeze = Add(CliOptions.Flag("--freeze-image-tower", "keep the image tower frozen; train the text side only (LiT)"));
        _resume = Add(CliOptions.Flag("--resume", "continue the run in --output (an --output that holds a run is refused without --resume or --force)"));
        _force = Add(CliOptions.Flag("--force", "start the run in --output over"));
        _vocab = Add(CliOptions.Text("--vocab", "FILE", "the tokenizer's vocabulary"));
        _imageColumn = Add(CliOptions.Text("--image-column", "NAME", "the CSV's image column (default filepath)", "--csv-img-key"));
        _captionColumn = Add(CliOptions.Text("--caption-column", "NAME", "the CSV's caption column (default caption)", "--csv-caption-key"));
        _threads = Add(CliOptions.Threads("--threads", "TorchSharp's threads, and the image loaders unless --workers (default: one per processor)"));
        _workers = Add(CliOptions.Threads("--workers", "threads that load and augment images (default: --threads)"));
    }

    public override int Run(ParseResult args, TextWriter stdout, TextWriter stderr)
    {
        var specArg = Value(args, _spec);
        var trainPath = Value(args, _train);
        var output = args.GetValue(_output);
        var valPath = args.GetValue(_val);
        var zeroShotFolder = args.GetValue(_zeroShotFolder);
        var weights = args.GetValue(_weights);
        var vocab = args.GetValue(_vocab);
        var imageColumn = args.GetValue(_imageColumn) ?? "filepath";
        var captionColumn = args.GetValue(_captionColumn) ?? "caption";
        var resume = args.GetValue(_resume);
        var force = args.GetValue(_force);
        var threads = args.GetValue(_threads) ?? Math.Min(Environment.ProcessorCount, Limits.MaxThreads);
        int? numSamples = args.GetValue(_numSamples);
        int shuffleBuffer = args.GetValue(_shuffleBuffer);
        var options = new TrainerOptions
        {
            Epochs = args.GetValue(_epochs),
            BatchSize = args.GetValue(_batchSize),
            LearningRate = args.GetValue(_lr),
            WarmupSteps = args.GetValue(_warmup),
            WeightDecay = args.GetValue(_weightDecay),
            AccumulationSteps = args.GetValue(_accumulation),
            GradClipNorm = args.GetValue(_clipNorm),
            Seed = args.GetValue(_seed),
            FreezeImageTower = args.GetValue(_freeze),
            LoaderThreads = args.GetValue(_workers) ?? Math.Max(1, threads),
        };
        int zeroShotFrequency = args.GetValue(_zeroShotFrequency);
        int saveFrequency = args.GetValue(_saveFrequency);
        var reportTo = (args.GetValue(_reportTo) ?? []).SelectMany(r => r.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToList();
        foreach (var r in reportTo)
            if (r is not ("tensorboard" or "none"))
                throw new CliUsageException($"--report-to takes tensorboard or none, not '{ErrorText.Value(r)}' (ClipGen writes no wandb logs)");
        bool tensorBoard = reportTo.Contains("tensorboard");
        if (output is not null && (args.GetValue(_logs) is not null || args.GetValue(_name) is not null))
            throw new CliUsageException("give --output, or --logs/--name, not both");
        // open_clip's run name: logs/<date>-model_<m>-lr_<lr>-b_<batch>-j_<workers>.
        output ??= Path.Combine(args.GetValue(_logs) ?? "logs", args.GetValue(_name) ?? FormattableString.Invariant(
            $"{DateTime.Now:yyyy_MM_dd-HH_mm_ss}-model_{Path.GetFileNameWithoutExtension(specArg)}-lr_{options.LearningRate}-b_{options.BatchSize}-j_{options.LoaderThreads}"));
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
        var board = tensorBoard ? new TensorBoardReport(Path.Combine(output, "tensorboard")) : null;
        var lines = new ProgressLine(stderr);
        IProgress<TrainProgress> progress = board is null ? lines : board.Wrap(lines);
        var trainer = new ClipTrainer(model, options, Tokenize)
        {
            Progress = progress,
            ImageSkipped = (_, reason) => stderr.WriteLine($"skipped {ErrorText.Message(reason)}"),
            Evaluate = (m, r) =>
            {
                bool zeroShotEpoch = (r.Epoch + 1) % zeroShotFrequency == 0 || r.Epoch + 1 == options.Epochs;
                if (zeroShot is not null && zeroShotEpoch)
                {
                    var all = zeroShot.Images.Select(i => i.Path).ToList();
                    var good = Readable(all);
                    if (good.Count > 0)
                    {
                        using var classes = Evaluation.ClassEmbeddings(m, zeroShot.Labels, ["a photo of a {}."], Tokenize);
                        using var px = preprocessor.PreprocessToTensor(good.Select(i => all[i]).ToList());
                        var (top1, top5) = Evaluation.ZeroShotTopK(m, classes, px, good.Select(i => zeroShot.Images[i].Label).ToArray(), k: 5);
                        r.Metrics["zero_shot_accuracy"] = top1;
                        r.Metrics["zero_shot_top5_accuracy"] = top5;
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
            board?.Epoch(r);
            if (saveFrequency > 0 && (r.Epoch + 1) % saveFrequency == 0)
            {
                var dir = Path.Combine(output, "checkpoints");
                Directory.CreateDirectory(dir);
                IO.TensorFiles.SaveSafetensors(Path.Combine(dir, $"epoch_{r.Epoch + 1}.safetensors"), model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value));
            }
            stdout.WriteLine(FormattableString.Invariant($"epoch {r.Epoch + 1}/{options.Epochs}: loss {r.TrainLoss:F4}, {r.ImagesPerSecond:F0} img/s") +
                string.Concat(r.Metrics.Select(kv => FormattableString.Invariant($", {kv.Key} {kv.Value:F3}"))));
        };

        using var cts = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; cts.Cancel(); };
        Console.CancelKeyPress += onCancel;
        TrainerState state;
        try { state = lines.Run(() => trainer.Train(data: train, outputDir: output, resume: resume, cancel: cts.Token, overwrite: force)); }
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
