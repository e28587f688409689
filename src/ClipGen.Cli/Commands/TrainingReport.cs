using System.Globalization;
using System.Text.Json;
using ClipGen.Training;

namespace ClipGen.Cli.Commands;

/// <summary>
/// Writes the per-epoch metrics as JSON lines and draws the loss and accuracy curves (ScottPlot), for the whole run: a resumed run
/// starts from the epochs saved in the trainer state, and the log is rewritten whole (temporary file, then rename) after each epoch,
/// so it always matches the checkpoint.
/// </summary>
sealed class TrainingReport
{
    readonly string _jsonl;
    readonly string _png;
    readonly List<EpochReport> _epochs = new();

    public TrainingReport(string outputDir)
    {
        _jsonl = Path.Combine(outputDir, "metrics.jsonl");
        _png = Path.Combine(outputDir, "curves.png");
    }

    public string MetricsPath => _jsonl;
    public string PlotPath => _png;
    public IReadOnlyList<EpochReport> Epochs => _epochs;

    /// <summary>Starts from the finished epochs of a resumed run (rewrites the log and the plot when there are any).</summary>
    public void Restore(IEnumerable<EpochReport> finished)
    {
        _epochs.Clear();
        _epochs.AddRange(finished);
        if (_epochs.Count > 0) Write();
    }

    public void Add(EpochReport r)
    {
        _epochs.RemoveAll(e => e.Epoch >= r.Epoch);
        _epochs.Add(r);
        Write();
    }

    void Write()
    {
        var lines = new System.Text.StringBuilder();
        foreach (var r in _epochs)
        {
            var row = new Dictionary<string, object>
            {
                ["epoch"] = r.Epoch + 1, ["step"] = r.Step, ["train_loss"] = r.TrainLoss, ["lr"] = r.LearningRate,
                ["images_per_s"] = r.ImagesPerSecond, ["seconds"] = r.Seconds,
            };
            foreach (var (k, v) in r.Metrics) row[k] = v;
            lines.Append(JsonSerializer.Serialize(row)).Append('\n');
        }
        var tmp = _jsonl + ".tmp";
        File.WriteAllText(tmp, lines.ToString());
        File.Move(tmp, _jsonl, overwrite: true);
        Plot();
    }

    static readonly string? FontName = RegisterFont();

    /// <summary>
    /// SkiaSharp's dependency-free native build does not ask fontconfig for fonts, so text would not render:
    /// register a system TrueType font with ScottPlot (DejaVu Sans on Debian: package fonts-dejavu-core).
    /// </summary>
    static string? RegisterFont()
    {
        string[] candidates =
        [
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/TTF/DejaVuSans.ttf",
            "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf", "/System/Library/Fonts/Helvetica.ttc", @"C:\Windows\Fonts\arial.ttf",
        ];
        var path = candidates.FirstOrDefault(File.Exists);
        if (path is null) return null;
        ScottPlot.Fonts.AddFontFile("ClipGenPlotFont", path);
        ScottPlot.Fonts.Default = "ClipGenPlotFont";
        return "ClipGenPlotFont";
    }

    void Plot()
    {
        var plt = new ScottPlot.Plot();
        double[] xs = _epochs.Select(e => (double)(e.Epoch + 1)).ToArray();
        var loss = plt.Add.Scatter(xs, _epochs.Select(e => e.TrainLoss).ToArray());
        loss.LegendText = "train loss";
        plt.Axes.Left.Label.Text = "loss";
        plt.Axes.Bottom.Label.Text = "epoch";
        var metricNames = _epochs.SelectMany(e => e.Metrics.Keys).Distinct().Where(k => k.Contains("accuracy", StringComparison.Ordinal) || k.Contains("recall", StringComparison.Ordinal)).ToList();
        foreach (var name in metricNames)
        {
            var pts = _epochs.Where(e => e.Metrics.ContainsKey(name)).ToList();
            var s = plt.Add.Scatter(pts.Select(e => (double)(e.Epoch + 1)).ToArray(), pts.Select(e => e.Metrics[name]).ToArray());
            s.LegendText = name;
            s.Axes.YAxis = plt.Axes.Right;
        }
        if (metricNames.Count > 0)
        {
            plt.Axes.Right.Label.Text = "accuracy / recall";
            plt.Axes.SetLimitsY(0, 1, plt.Axes.Right);
        }
        plt.ShowLegend(ScottPlot.Alignment.UpperRight);
        plt.Title("ClipGen training");
        if (FontName is not null) plt.Font.Set(FontName);
        plt.SavePng(_png, 900, 500);
    }
}

/// <summary>
/// Training progress on stderr: on a terminal, a Spectre.Console bar of the run's steps (<see cref="Run"/>); otherwise a plain line
/// every 10 % of the steps.
/// </summary>
sealed class ProgressLine(TextWriter err) : IProgress<TrainProgress>
{
    int _lastDecile = -1;
    CliProgress.Bar? _bar;

    /// <summary>Runs the training under a progress bar when stderr is a terminal, else as is.</summary>
    public T Run<T>(Func<T> train)
    {
        if (!CliProgress.Interactive(err)) return train();
        return CliProgress.Show("training", bytes: false, bar =>
        {
            _bar = bar;
            try { return train(); }
            finally { _bar = null; }
        });
    }

    public void Report(TrainProgress p)
    {
        var frac = (double)p.Step / Math.Max(1, p.TotalSteps);
        if (_bar is { } bar)
        {
            bar.Update(p.Step, p.TotalSteps, string.Create(CultureInfo.InvariantCulture, $"epoch {p.Epoch + 1} loss {p.Loss:F4} lr {p.LearningRate:E2} {p.ImagesPerSecond:F0} img/s"));
            return;
        }
        int decile = (int)(frac * 10);
        if (decile == _lastDecile) return;
        _lastDecile = decile;
        err.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"epoch {p.Epoch + 1} step {p.Step}/{p.TotalSteps} [{Bar(frac)}] loss {p.Loss:F4} lr {p.LearningRate:E2} {p.ImagesPerSecond:F0} img/s"));
    }

    static string Bar(double f)
    {
        int n = (int)Math.Round(f * 20);
        return new string('#', n) + new string('.', 20 - n);
    }
}
