using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using ClipGen.Modeling;
using ClipGen.Specs;
using TorchSharp;
using static TorchSharp.torch;

namespace ClipGen.Training;

/// <summary>Where a training run stands; saved beside the weights so that a resume continues exactly.</summary>
public sealed record TrainerState
{
    public int Epoch { get; init; }
    /// <summary>Optimiser steps already taken inside <see cref="Epoch"/>.</summary>
    public int StepInEpoch { get; init; }
    /// <summary>Optimiser steps taken in total.</summary>
    public long GlobalStep { get; init; }
    public string SpecName { get; init; } = "";
    public int Seed { get; init; }
    public int BatchSize { get; init; }
    public int AccumulationSteps { get; init; }
    public int DatasetCount { get; init; }
    public bool Finished { get; init; }
    /// <summary>Sum of the step losses of <see cref="Epoch"/> so far (its train_loss averages every step, across a resume).</summary>
    public double EpochLossSum { get; init; }
    /// <summary>Steps with a loss in <see cref="Epoch"/> so far.</summary>
    public int EpochLossCount { get; init; }
    /// <summary>Images trained on in <see cref="Epoch"/> so far, and the seconds it took.</summary>
    public long EpochImages { get; init; }
    public double EpochSeconds { get; init; }
    /// <summary>Every finished epoch's summary, saved with the checkpoint that ends it (so a metrics log can always be rebuilt).</summary>
    public List<EpochSummary> History { get; init; } = [];
}

/// <summary>One finished epoch as saved in <see cref="TrainerState.History"/>.</summary>
public sealed record EpochSummary(int Epoch, long Step, double TrainLoss, double LearningRate, double ImagesPerSecond, double Seconds, Dictionary<string, double> Metrics)
{
    public static EpochSummary From(EpochReport r) => new(r.Epoch, r.Step, r.TrainLoss, r.LearningRate, r.ImagesPerSecond, r.Seconds, new Dictionary<string, double>(r.Metrics));

    public EpochReport ToReport()
    {
        var r = new EpochReport(Epoch, Step, TrainLoss, LearningRate, ImagesPerSecond, Seconds);
        foreach (var (k, v) in Metrics ?? []) r.Metrics[k] = v;
        return r;
    }
}

/// <summary>
/// Contrastive training of a <see cref="ClipModule"/>: InfoNCE (or SigLIP, per the spec), AdamW with decoupled
/// decay on ≥2-D weights, warm-up + cosine schedule, gradient clipping and accumulation, logit scale clamped at
/// 100, background data loading, atomic checkpoints every epoch and on cancellation, exact resume.
/// </summary>
public sealed class ClipTrainer
{
    public const string WeightsFile = "checkpoint.safetensors";
    public const string StateFile = "trainer_state.json";
    static readonly double MaxLogitScale = Math.Log(100);

    readonly ClipModule _model;
    readonly TrainerOptions _o;
    readonly Func<IReadOnlyList<string>, long[]> _tokenize;
    readonly int _context;

    /// <param name="tokenize">Encodes captions into a row-major [N, context_length] id array.</param>
    public ClipTrainer(ClipModule model, TrainerOptions options, Func<IReadOnlyList<string>, long[]> tokenize)
    {
        options.Validate();
        if (options.BatchSize < 2) throw new ClipGenException("contrastive training needs a batch size of at least 2");
        if (options.Epochs < 1) throw new ClipGenException($"Epochs must be at least 1, not {options.Epochs}");
        Limits.CheckThreads(options.LoaderThreads, nameof(options.LoaderThreads));
        if (options.AccumulationSteps < 1) throw new ClipGenException("accumulation steps must be at least 1");
        _model = model; _o = options; _tokenize = tokenize;
        _context = model.Spec.Text.ContextLength;
    }

    /// <summary>Called after each epoch with the model in eval mode, to add evaluation metrics.</summary>
    public Action<ClipModule, EpochReport>? Evaluate { get; set; }

    /// <summary>Called after each epoch's report is complete (metrics log, plots).</summary>
    public Action<EpochReport>? EpochCompleted { get; set; }

    public IProgress<TrainProgress>? Progress { get; set; }

    /// <summary>
    /// Called once per item whose image cannot be loaded (a <see cref="ClipGenException"/>: not an image, truncated, over the pixel limit, …),
    /// with the item and the one-line reason. Such items are left out of their batches; training goes on.
    /// </summary>
    public Action<int, string>? ImageSkipped { get; set; }

    /// <summary>The state saved in <paramref name="outputDir"/>, or null when there is none; a damaged state file is a <see cref="ClipGenException"/>.</summary>
    public static TrainerState? ReadState(string outputDir)
    {
        var statePath = Path.Combine(outputDir, StateFile);
        if (!File.Exists(statePath)) return null;
        try
        {
            var state = JsonSerializer.Deserialize<TrainerState>(IO.InputFiles.ReadAllBytes(statePath, 64L << 20, "a trainer state")) ?? throw new JsonException("the file holds null");
            if (state.Epoch < 0) throw Bad(statePath, "Epoch", state.Epoch, "must not be negative");
            if (state.StepInEpoch < 0) throw Bad(statePath, "StepInEpoch", state.StepInEpoch, "must not be negative");
            if (state.GlobalStep < 0) throw Bad(statePath, "GlobalStep", state.GlobalStep, "must not be negative");
            if (state.EpochLossCount < 0 || state.EpochImages < 0 || !double.IsFinite(state.EpochLossSum) || !double.IsFinite(state.EpochSeconds))
                throw Bad(statePath, "EpochLossSum/EpochLossCount/EpochImages/EpochSeconds", state.EpochLossCount, "must be finite and not negative");
            if (state.History is null || state.History.Count > state.Epoch)
                throw Bad(statePath, "History", state.History?.Count ?? -1, $"must list at most the {state.Epoch} finished epochs");
            return state;
        }
        catch (JsonException e) { throw new ClipGenException($"cannot resume: {statePath} is not a trainer state ({e.Message})"); }

        static ClipGenException Bad(string file, string key, object value, string why) =>
            new($"cannot resume: {file}: \"{key}\" is {value}, which {why}");
    }

    /// <summary>
    /// Trains on <paramref name="data"/>, writing checkpoints into <paramref name="outputDir"/>. With
    /// <paramref name="resume"/>, continues from the checkpoint there. Cancelling saves a checkpoint at the current
    /// step and returns; the returned state says where it stopped.
    /// </summary>
    /// <param name="overwrite">
    /// Start over in a folder that already holds a run (its checkpoint and state are replaced). Without it, and without
    /// <paramref name="resume"/>, such a folder is refused rather than silently overwritten.
    /// </param>
    /// <exception cref="ClipGenException">
    /// The data or settings are unusable, the folder holds another run, or the loss or the weights stop being finite (training
    /// diverged: nothing is saved after the last finite checkpoint).
    /// </exception>
    public TrainerState Train(ICaptionDataset data, string outputDir, bool resume = false, CancellationToken cancel = default, bool overwrite = false)
    {
        if (data.Count < _o.BatchSize * _o.AccumulationSteps)
            throw new ClipGenException($"the training set has {data.Count} items, fewer than one batch ({_o.BatchSize}×{_o.AccumulationSteps})");
        if (!resume && !overwrite && (File.Exists(Path.Combine(outputDir, StateFile)) || File.Exists(Path.Combine(outputDir, WeightsFile))))
            throw new ClipGenException($"'{outputDir}' already holds a training run ({StateFile}, {WeightsFile}); resume it, or start over in another folder or with overwrite set");
        Directory.CreateDirectory(outputDir);
        int microPerEpoch = data.Count / _o.BatchSize;
        int stepsPerEpoch = microPerEpoch / _o.AccumulationSteps;
        long totalSteps = (long)stepsPerEpoch * _o.Epochs;
        var schedule = new CosineSchedule(_o.LearningRate, Math.Min(_o.WarmupSteps, Math.Max(1, totalSteps / 5)), totalSteps);

        var parameters = ParameterGroups.Split(_model, _o.FreezeImageTower);
        using var optimizer = new AdamW(parameters, _o.Beta1, _o.Beta2, _o.Eps, _o.WeightDecay);
        var state = new TrainerState
        {
            SpecName = _model.Spec.Name, Seed = _o.Seed, BatchSize = _o.BatchSize, AccumulationSteps = _o.AccumulationSteps, DatasetCount = data.Count,
        };
        if (resume) state = Restore(outputDir, optimizer, data.Count, stepsPerEpoch);
        if (state.Finished) return state;

        var siglip = _model.Spec.Loss == LossKind.SigLip;
        var skipped = new ConcurrentDictionary<int, bool>();
        for (int epoch = state.Epoch; epoch < _o.Epochs; epoch++)
        {
            var order = data is IEpochOrder ordered ? ordered.EpochOrder(_o.Seed, epoch) : Permutation(data.Count, _o.Seed, epoch);
            var sw = Stopwatch.StartNew();
            // A resumed epoch continues its sums, so that its train_loss averages all of its steps.
            bool continuing = epoch == state.Epoch;
            double lossSum = continuing ? state.EpochLossSum : 0;
            int lossCount = continuing ? state.EpochLossCount : 0;
            long images = continuing ? state.EpochImages : 0;
            double earlierSeconds = continuing ? state.EpochSeconds : 0;
            int startStep = continuing ? state.StepInEpoch : 0;
            _model.train();
            if (_o.FreezeImageTower) _model.Visual.eval();
            using var loader = new BatchLoader(data, order, _o, _context, _tokenize, startStep * _o.AccumulationSteps, stepsPerEpoch * _o.AccumulationSteps, epoch,
                skipped, ImageSkipped);
            for (int step = startStep; step < stepsPerEpoch; step++)
            {
                if (cancel.IsCancellationRequested)
                {
                    CheckWeights(outputDir, epoch, step);
                    state = state with
                    {
                        Epoch = epoch, StepInEpoch = step, EpochLossSum = lossSum, EpochLossCount = lossCount, EpochImages = images,
                        EpochSeconds = earlierSeconds + sw.Elapsed.TotalSeconds,
                    };
                    Save(outputDir, optimizer, state);
                    return state;
                }
                var lr = schedule.At(state.GlobalStep);
                optimizer.ZeroGrad();
                double stepLoss = 0;
                int contributing = 0;
                for (int micro = 0; micro < _o.AccumulationSteps; micro++)
                {
                    var (pixels, tokens, n) = loader.Next();
                    if (n < 2) continue; // fewer than two loadable images: no contrastive signal in this micro-batch
                    using var scope = NewDisposeScope();
                    using var px = TensorArrays.FromArray(pixels, [n, 3, _model.Spec.Vision.ImageSize, _model.Spec.Vision.ImageSize]);
                    using var ids = TensorArrays.FromArray(tokens, [n, _context]);
                    var output = _model.forward(px, ids);
                    var loss = siglip ? ClipLoss.SigLip(output.LogitsPerImage) : ClipLoss.InfoNce(output.LogitsPerImage, output.LogitsPerText);
                    double value = loss.item<float>();
                    if (!double.IsFinite(value)) throw Diverged(outputDir, epoch, step, $"the loss is {value}", lr);
                    (loss / _o.AccumulationSteps).backward();
                    stepLoss += value / _o.AccumulationSteps;
                    images += n;
                    contributing++;
                }
                if (contributing > 0)
                {
                    if (_o.GradClipNorm > 0)
                        nn.utils.clip_grad_norm_(parameters.Select(p => p.Tensor).ToArray(), _o.GradClipNorm);
                    optimizer.Step(lr);
                    using (no_grad()) _model.LogitScale.clamp_(0, MaxLogitScale);
                    lossSum += stepLoss * _o.AccumulationSteps / contributing;
                    lossCount++;
                }
                state = state with { Epoch = epoch, StepInEpoch = step + 1, GlobalStep = state.GlobalStep + 1 };
                Progress?.Report(new TrainProgress(epoch, state.GlobalStep, totalSteps, stepLoss, lr, images / Math.Max(1e-9, earlierSeconds + sw.Elapsed.TotalSeconds)));
            }
            double seconds = earlierSeconds + sw.Elapsed.TotalSeconds;
            var report = new EpochReport(epoch, state.GlobalStep, lossCount > 0 ? lossSum / lossCount : double.NaN, schedule.At(Math.Max(0, state.GlobalStep - 1)),
                images / Math.Max(1e-9, seconds), seconds);
            if (Evaluate is not null)
            {
                _model.eval();
                using (no_grad()) Evaluate(_model, report);
            }
            CheckWeights(outputDir, epoch, stepsPerEpoch - 1);
            // The epoch's summary is saved with its checkpoint, so a kill before the metrics log is written loses nothing.
            state = state with
            {
                Epoch = epoch + 1, StepInEpoch = 0, Finished = epoch + 1 == _o.Epochs,
                EpochLossSum = 0, EpochLossCount = 0, EpochImages = 0, EpochSeconds = 0,
                History = [.. state.History, EpochSummary.From(report)],
            };
            Save(outputDir, optimizer, state);
            EpochCompleted?.Invoke(report);
        }
        _model.eval();
        return state;
    }

    static ClipGenException Diverged(string outputDir, int epoch, int step, string what, double? lr)
    {
        var kept = File.Exists(Path.Combine(outputDir, StateFile)) ? $"the last good checkpoint in '{outputDir}' is kept" : "nothing was saved";
        var rate = lr is { } l ? FormattableString.Invariant($" (learning rate {l:G4})") : "";
        return new ClipGenException($"training diverged at epoch {epoch + 1}, step {step + 1}: {what}{rate}; {kept}. Lower the learning rate, or check the initial logit scale and the data");
    }

    /// <summary>Never replace a good checkpoint by one holding NaN or infinite weights.</summary>
    void CheckWeights(string outputDir, int epoch, int step)
    {
        using var _ = no_grad();
        foreach (var (name, p) in _model.named_parameters())
            if (!torch.isfinite(p).all().item<bool>())
                throw Diverged(outputDir, epoch, step, $"parameter '{name}' is no longer finite", null);
    }

    /// <summary>The data order of an epoch: a permutation drawn from (seed, epoch) only.</summary>
    public static int[] Permutation(int count, int seed, int epoch)
    {
        var rng = new Random(unchecked(seed * 1_000_003 + epoch * 7_919 + 17));
        var p = Enumerable.Range(0, count).ToArray();
        rng.Shuffle(p);
        return p;
    }

    void Save(string dir, AdamW optimizer, TrainerState state)
    {
        var tensors = new Dictionary<string, Tensor>();
        foreach (var (k, v) in _model.state_dict()) tensors[k] = v;
        foreach (var (k, v) in optimizer.StateTensors()) tensors[k] = v;
        IO.TensorFiles.SaveSafetensors(Path.Combine(dir, WeightsFile), tensors);
        var json = JsonSerializer.Serialize(state with { }, new JsonSerializerOptions { WriteIndented = true });
        var tmp = Path.Combine(dir, StateFile + ".tmp");
        File.WriteAllText(tmp, json);
        File.Move(tmp, Path.Combine(dir, StateFile), overwrite: true);
    }

    TrainerState Restore(string dir, AdamW optimizer, int datasetCount, int stepsPerEpoch)
    {
        var statePath = Path.Combine(dir, StateFile);
        var weightsPath = Path.Combine(dir, WeightsFile);
        var read = File.Exists(weightsPath) ? ReadState(dir) : null;
        if (read is not { } state)
            throw new ClipGenException($"cannot resume: '{dir}' holds no {StateFile} and {WeightsFile}");
        if (state.SpecName != _model.Spec.Name) throw new ClipGenException($"cannot resume: the checkpoint in '{dir}' is of spec '{state.SpecName}', not '{_model.Spec.Name}'");
        if (state.Seed != _o.Seed || state.BatchSize != _o.BatchSize || state.AccumulationSteps != _o.AccumulationSteps || state.DatasetCount != datasetCount)
            throw new ClipGenException($"cannot resume: seed, batch size, accumulation or dataset size differ from the interrupted run (seed {state.Seed}, batch {state.BatchSize}, accumulation {state.AccumulationSteps}, {state.DatasetCount} items)");
        if (state.StepInEpoch >= Math.Max(1, stepsPerEpoch) || state.GlobalStep != (long)state.Epoch * stepsPerEpoch + state.StepInEpoch)
            throw new ClipGenException($"cannot resume: {statePath}: epoch {state.Epoch}, step {state.StepInEpoch} and global step {state.GlobalStep} do not agree with {stepsPerEpoch} steps per epoch");
        if (state.Epoch > _o.Epochs)
            throw new ClipGenException($"cannot resume: {statePath}: \"Epoch\" is {state.Epoch}, beyond the {_o.Epochs} epochs of this run");
        state = state with { Finished = state.Epoch == _o.Epochs }; // a finished run resumed with more epochs goes on
        using var all = Checkpoints.CheckpointLoader.ReadStateDict(weightsPath);
        var modelPart = all.Tensors.Where(kv => !kv.Key.StartsWith("optimizer.", StringComparison.Ordinal)).ToDictionary(kv => kv.Key, kv => kv.Value);
        WeightLoading.Load(_model, modelPart, weightsPath);
        optimizer.LoadState(all.Tensors, state.GlobalStep);
        return state;
    }

    /// <summary>Builds batches on background threads, in the epoch's order, deterministic whatever the threading.</summary>
    sealed class BatchLoader : IDisposable
    {
        readonly BlockingCollection<(float[], long[], int)> _queue = new(boundedCapacity: 3);
        readonly CancellationTokenSource _stop = new();
        readonly Task _producer;

        public BatchLoader(ICaptionDataset data, int[] order, TrainerOptions o, int context, Func<IReadOnlyList<string>, long[]> tokenize, int firstMicro, int microCount, int epoch,
            ConcurrentDictionary<int, bool> skipped, Action<int, string>? onSkipped)
        {
            _producer = Task.Run(() =>
            {
                try
                {
                    for (int micro = firstMicro; micro < microCount && !_stop.IsCancellationRequested; micro++)
                    {
                        var idx = order.AsSpan(micro * o.BatchSize, o.BatchSize).ToArray();
                        var (pixels, good) = Fill(data, idx, o, epoch, skipped, onSkipped);
                        var tokens = good.Length == 0 ? [] : tokenize(good.Select(data.Caption).ToList());
                        if (tokens.Length != good.Length * context)
                            throw new ClipGenException($"the tokenizer returned {tokens.Length} ids for {good.Length} captions of context {context}");
                        _queue.Add((pixels, tokens, good.Length), _stop.Token);
                    }
                }
                catch (OperationCanceledException) { }
                finally { _queue.CompleteAdding(); }
            });
        }

        /// <summary>
        /// The batch's pixels, without the items whose image cannot be loaded (each reported once); which items those are depends
        /// only on the files, so the batches stay deterministic across threads and resumes.
        /// </summary>
        static (float[] Pixels, int[] Good) Fill(ICaptionDataset data, int[] idx, TrainerOptions o, int epoch, ConcurrentDictionary<int, bool> skipped, Action<int, string>? onSkipped)
        {
            int per = 3 * data.ImageSize * data.ImageSize;
            var pixels = new float[per * idx.Length];
            var ok = new bool[idx.Length];
            Parallel.For(0, idx.Length, new ParallelOptions { MaxDegreeOfParallelism = o.LoaderThreads }, i =>
            {
                if (skipped.ContainsKey(idx[i])) return;
                // Each item's augmentation depends only on (seed, epoch, item), never on thread timing.
                var rng = o.Augment ? new Random(unchecked(o.Seed * 1_000_003 + epoch * 7_919 + idx[i] * 31 + 5)) : null;
                try
                {
                    data.LoadImage(idx[i], pixels.AsSpan(i * per, per), rng);
                    ok[i] = true;
                }
                catch (ClipGenException e)
                {
                    if (skipped.TryAdd(idx[i], true)) onSkipped?.Invoke(idx[i], e.Message);
                }
            });
            int n = ok.Count(x => x);
            if (n == idx.Length) return (pixels, idx);
            var packed = new float[per * n];
            var good = new int[n];
            for (int i = 0, j = 0; i < idx.Length; i++)
            {
                if (!ok[i]) continue;
                pixels.AsSpan(i * per, per).CopyTo(packed.AsSpan(j * per, per));
                good[j++] = idx[i];
            }
            return (packed, good);
        }

        public (float[] Pixels, long[] Tokens, int Count) Next()
        {
            try { return _queue.Take(); }
            catch (InvalidOperationException)
            {
                _producer.GetAwaiter().GetResult(); // surfaces the loader's exception
                throw new ClipGenException("the data loader stopped early");
            }
        }

        public void Dispose()
        {
            _stop.Cancel();
            try { _producer.Wait(); } catch (AggregateException) { }
            _stop.Dispose();
            _queue.Dispose();
        }
    }
}
