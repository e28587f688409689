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
        if (options.BatchSize < 2) throw new ClipGenException("contrastive training needs a batch size of at least 2");
        if (options.Epochs < 1) throw new ClipGenException("--epochs must be at least 1");
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
    /// Trains on <paramref name="data"/>, writing checkpoints into <paramref name="outputDir"/>. With
    /// <paramref name="resume"/>, continues from the checkpoint there. Cancelling saves a checkpoint at the current
    /// step and returns; the returned state says where it stopped.
    /// </summary>
    public TrainerState Train(ICaptionDataset data, string outputDir, bool resume = false, CancellationToken cancel = default)
    {
        if (data.Count < _o.BatchSize * _o.AccumulationSteps)
            throw new ClipGenException($"the training set has {data.Count} items, fewer than one batch ({_o.BatchSize}×{_o.AccumulationSteps})");
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
        if (resume) state = Restore(outputDir, optimizer, data.Count);
        if (state.Finished) return state;

        var siglip = _model.Spec.Loss == LossKind.SigLip;
        for (int epoch = state.Epoch; epoch < _o.Epochs; epoch++)
        {
            var order = data is IEpochOrder ordered ? ordered.EpochOrder(_o.Seed, epoch) : Permutation(data.Count, _o.Seed, epoch);
            var sw = Stopwatch.StartNew();
            double lossSum = 0; int lossCount = 0; long images = 0;
            int startStep = epoch == state.Epoch ? state.StepInEpoch : 0;
            _model.train();
            if (_o.FreezeImageTower) _model.Visual.eval();
            using var loader = new BatchLoader(data, order, _o, _context, _tokenize, startStep * _o.AccumulationSteps, stepsPerEpoch * _o.AccumulationSteps, epoch);
            for (int step = startStep; step < stepsPerEpoch; step++)
            {
                if (cancel.IsCancellationRequested)
                {
                    state = state with { Epoch = epoch, StepInEpoch = step };
                    Save(outputDir, optimizer, state);
                    return state;
                }
                var lr = schedule.At(state.GlobalStep);
                optimizer.ZeroGrad();
                double stepLoss = 0;
                for (int micro = 0; micro < _o.AccumulationSteps; micro++)
                {
                    var (pixels, tokens) = loader.Next();
                    using var scope = NewDisposeScope();
                    using var px = TensorArrays.FromArray(pixels, [_o.BatchSize, 3, _model.Spec.Vision.ImageSize, _model.Spec.Vision.ImageSize]);
                    using var ids = TensorArrays.FromArray(tokens, [_o.BatchSize, _context]);
                    var output = _model.forward(px, ids);
                    var loss = siglip ? ClipLoss.SigLip(output.LogitsPerImage) : ClipLoss.InfoNce(output.LogitsPerImage, output.LogitsPerText);
                    (loss / _o.AccumulationSteps).backward();
                    stepLoss += loss.item<float>() / _o.AccumulationSteps;
                    images += _o.BatchSize;
                }
                if (_o.GradClipNorm > 0)
                    nn.utils.clip_grad_norm_(parameters.Select(p => p.Tensor).ToArray(), _o.GradClipNorm);
                optimizer.Step(lr);
                using (no_grad()) _model.LogitScale.clamp_(0, MaxLogitScale);
                state = state with { Epoch = epoch, StepInEpoch = step + 1, GlobalStep = state.GlobalStep + 1 };
                lossSum += stepLoss; lossCount++;
                Progress?.Report(new TrainProgress(epoch, state.GlobalStep, totalSteps, stepLoss, lr, images / Math.Max(1e-9, sw.Elapsed.TotalSeconds)));
            }
            var report = new EpochReport(epoch, state.GlobalStep, lossCount > 0 ? lossSum / lossCount : double.NaN, schedule.At(Math.Max(0, state.GlobalStep - 1)),
                images / Math.Max(1e-9, sw.Elapsed.TotalSeconds), sw.Elapsed.TotalSeconds);
            state = state with { Epoch = epoch + 1, StepInEpoch = 0, Finished = epoch + 1 == _o.Epochs };
            Save(outputDir, optimizer, state);
            if (Evaluate is not null)
            {
                _model.eval();
                using (no_grad()) Evaluate(_model, report);
            }
            EpochCompleted?.Invoke(report);
        }
        _model.eval();
        return state;
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

    TrainerState Restore(string dir, AdamW optimizer, int datasetCount)
    {
        var statePath = Path.Combine(dir, StateFile);
        var weightsPath = Path.Combine(dir, WeightsFile);
        if (!File.Exists(statePath) || !File.Exists(weightsPath))
            throw new ClipGenException($"cannot resume: '{dir}' holds no {StateFile} and {WeightsFile}");
        TrainerState state;
        try { state = JsonSerializer.Deserialize<TrainerState>(File.ReadAllText(statePath)) ?? throw new JsonException("empty"); }
        catch (JsonException e) { throw new ClipGenException($"cannot resume: {statePath} is not a trainer state ({e.Message})"); }
        if (state.SpecName != _model.Spec.Name) throw new ClipGenException($"cannot resume: the checkpoint in '{dir}' is of spec '{state.SpecName}', not '{_model.Spec.Name}'");
        if (state.Seed != _o.Seed || state.BatchSize != _o.BatchSize || state.AccumulationSteps != _o.AccumulationSteps || state.DatasetCount != datasetCount)
            throw new ClipGenException($"cannot resume: seed, batch size, accumulation or dataset size differ from the interrupted run (seed {state.Seed}, batch {state.BatchSize}, accumulation {state.AccumulationSteps}, {state.DatasetCount} items)");
        using var all = Checkpoints.CheckpointLoader.ReadStateDict(weightsPath);
        var modelPart = all.Tensors.Where(kv => !kv.Key.StartsWith("optimizer.", StringComparison.Ordinal)).ToDictionary(kv => kv.Key, kv => kv.Value);
        WeightLoading.Load(_model, modelPart, weightsPath);
        optimizer.LoadState(all.Tensors, state.GlobalStep);
        return state;
    }

    /// <summary>Builds batches on background threads, in the epoch's order, deterministic whatever the threading.</summary>
    sealed class BatchLoader : IDisposable
    {
        readonly BlockingCollection<(float[], long[])> _queue = new(boundedCapacity: 3);
        readonly CancellationTokenSource _stop = new();
        readonly Task _producer;

        public BatchLoader(ICaptionDataset data, int[] order, TrainerOptions o, int context, Func<IReadOnlyList<string>, long[]> tokenize, int firstMicro, int microCount, int epoch)
        {
            _producer = Task.Run(() =>
            {
                try
                {
                    for (int micro = firstMicro; micro < microCount && !_stop.IsCancellationRequested; micro++)
                    {
                        var idx = order.AsSpan(micro * o.BatchSize, o.BatchSize).ToArray();
                        var pixels = Fill(data, idx, o, epoch);
                        var tokens = tokenize(idx.Select(data.Caption).ToList());
                        if (tokens.Length != idx.Length * context)
                            throw new ClipGenException($"the tokenizer returned {tokens.Length} ids for {idx.Length} captions of context {context}");
                        _queue.Add((pixels, tokens), _stop.Token);
                    }
                }
                catch (OperationCanceledException) { }
                finally { _queue.CompleteAdding(); }
            });
        }

        static float[] Fill(ICaptionDataset data, int[] idx, TrainerOptions o, int epoch)
        {
            int per = 3 * data.ImageSize * data.ImageSize;
            var pixels = new float[per * idx.Length];
            Parallel.For(0, idx.Length, new ParallelOptions { MaxDegreeOfParallelism = o.LoaderThreads }, i =>
            {
                // Each item's augmentation depends only on (seed, epoch, item), never on thread timing.
                var rng = o.Augment ? new Random(unchecked(o.Seed * 1_000_003 + epoch * 7_919 + idx[i] * 31 + 5)) : null;
                data.LoadImage(idx[i], pixels.AsSpan(i * per, per), rng);
            });
            return pixels;
        }

        public (float[] Pixels, long[] Tokens) Next()
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
