namespace ClipGen.Training;

/// <summary>Training hyper-parameters. Defaults follow the CLIP paper where it gives one.</summary>
public sealed record TrainerOptions
{
    /// <summary>Passes over the training set.</summary>
    public int Epochs { get; init; } = 10;
    /// <summary>Images (and captions) per optimiser step, before accumulation.</summary>
    public int BatchSize { get; init; } = 64;
    /// <summary>Micro-batches whose gradients are summed before one optimiser step.</summary>
    public int AccumulationSteps { get; init; } = 1;
    /// <summary>Peak learning rate (after warm-up).</summary>
    public double LearningRate { get; init; } = 5e-4;
    /// <summary>Linear warm-up length in optimiser steps.</summary>
    public int WarmupSteps { get; init; } = 100;
    /// <summary>Decoupled weight decay (≥2-D weights only).</summary>
    public double WeightDecay { get; init; } = 0.2;
    /// <summary>Adam β1, β2 and ε (CLIP: 0.9, 0.98, 1e-6).</summary>
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.98;
    public double Eps { get; init; } = 1e-6;
    /// <summary>Global gradient-norm clip; 0 turns it off.</summary>
    public double GradClipNorm { get; init; } = 1.0;
    /// <summary>Seed of the data order and augmentation (the model's initial weights are seeded by the caller).</summary>
    public int Seed { get; init; } = 0;
    /// <summary>LiT: keep the image tower frozen and train only the text side.</summary>
    public bool FreezeImageTower { get; init; }
    /// <summary>Worker threads that load and augment images in the background.</summary>
    public int LoaderThreads { get; init; } = Math.Max(1, Environment.ProcessorCount);
    /// <summary>Apply random resized crop augmentation to training images.</summary>
    public bool Augment { get; init; } = true;

    /// <summary>Throws a <see cref="ClipGenException"/> naming the first setting that is out of range (NaN and infinities included).</summary>
    public void Validate()
    {
        static void Check(bool ok, string name, double value, string range)
        {
            if (!ok) throw new ClipGenException(FormattableString.Invariant($"{name} must be {range}, not {value}"));
        }
        Check(double.IsFinite(LearningRate) && LearningRate >= 0, nameof(LearningRate), LearningRate, "a finite number >= 0");
        Check(double.IsFinite(WeightDecay) && WeightDecay >= 0, nameof(WeightDecay), WeightDecay, "a finite number >= 0");
        Check(Beta1 is >= 0 and < 1, nameof(Beta1), Beta1, "in [0, 1)");
        Check(Beta2 is >= 0 and < 1, nameof(Beta2), Beta2, "in [0, 1)");
        Check(double.IsFinite(Eps) && Eps > 0, nameof(Eps), Eps, "a finite number > 0");
        Check(double.IsFinite(GradClipNorm) && GradClipNorm >= 0, nameof(GradClipNorm), GradClipNorm, "a finite number >= 0 (0 turns clipping off)");
        Check(WarmupSteps >= 0, nameof(WarmupSteps), WarmupSteps, "0 or more");
    }
}

/// <summary>Progress of a training run, reported every step.</summary>
public sealed record TrainProgress(int Epoch, long Step, long TotalSteps, double Loss, double LearningRate, double ImagesPerSecond);

/// <summary>What the trainer reports after each epoch; evaluation hooks add their metrics.</summary>
public sealed record EpochReport(int Epoch, long Step, double TrainLoss, double LearningRate, double ImagesPerSecond, double Seconds)
{
    /// <summary>Extra metrics (zero-shot accuracy, recall@k, …) by name.</summary>
    public Dictionary<string, double> Metrics { get; } = new();
}
