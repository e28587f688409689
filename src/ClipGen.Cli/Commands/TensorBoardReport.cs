using ClipGen.Training;
using TorchSharp;

namespace ClipGen.Cli.Commands;

/// <summary>
/// <c>train --report-to tensorboard</c>: TensorBoard event files (TorchSharp's <c>SummaryWriter</c>) in the run's
/// <c>tensorboard/</c> folder. Every step: <c>train/loss</c>, <c>train/lr</c>; every epoch: <c>train/epoch_loss</c>,
/// <c>train/images_per_second</c> and each evaluation metric as <c>val/&lt;name&gt;</c>, at the global step. A resumed run adds
/// a new event file beside the earlier ones; TensorBoard reads them as one run. Each event is written and flushed as it is added.
/// </summary>
sealed class TensorBoardReport(string folder)
{
    readonly TorchSharp.Modules.SummaryWriter _writer = torch.utils.tensorboard.SummaryWriter(folder);

    public string Folder => _writer.LogDir;

    /// <summary>Forwards every step's progress to <paramref name="inner"/> and records its loss and learning rate.</summary>
    public IProgress<TrainProgress> Wrap(IProgress<TrainProgress> inner) => new StepScalars(this, inner);

    public void Epoch(EpochReport r)
    {
        int step = Step(r.Step);
        Scalar("train/epoch_loss", r.TrainLoss, step);
        Scalar("train/images_per_second", r.ImagesPerSecond, step);
        foreach (var (name, value) in r.Metrics.OrderBy(kv => kv.Key, StringComparer.Ordinal)) Scalar("val/" + name, value, step);
    }

    void Scalar(string tag, double value, int step)
    {
        if (!double.IsFinite(value)) return;
        // Wall time in seconds since 1970, as TensorBoard expects (the writer's own default is not).
        _writer.add_scalar(tag, (float)value, step, DateTimeOffset.UtcNow.ToUnixTimeSeconds());
    }

    static int Step(long step) => (int)Math.Min(step, int.MaxValue);


    sealed class StepScalars(TensorBoardReport board, IProgress<TrainProgress> inner) : IProgress<TrainProgress>
    {
        public void Report(TrainProgress p)
        {
            inner.Report(p);
            int step = Step(p.Step);
            board.Scalar("train/loss", p.Loss, step);
            board.Scalar("train/lr", p.LearningRate, step);
        }
    }
}
