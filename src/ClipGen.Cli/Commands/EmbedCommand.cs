using System.Globalization;
using ClipGen.Applications;

namespace ClipGen.Cli.Commands;

/// <summary><c>clipgen embed</c>: image embeddings of a folder, resumable, into a safetensors file Python can read.</summary>
sealed class EmbedCommand : ICommand
{
    public string Name => "embed";
    public string Summary => "embed a folder of images into <file>.safetensors + <file>.files.txt (resumable)";
    public string Usage => "clipgen embed " + AppHelpers.ModelUsage + " --images <folder|glob> --output <embeddings.safetensors> [--batch-size N] [--quiet]";

    public int Run(CliArgs args, TextWriter stdout, TextWriter stderr)
    {
        var model = AppHelpers.ModelOptions(args);
        var imagesArg = args.Require("images");
        var output = args.Require("output");
        int batch = args.GetInt("batch-size", 64);
        bool quiet = args.Has("quiet");
        args.RejectUnknown();
        if (batch <= 0) throw new CliUsageException($"--batch-size must be positive, not {batch}");

        var files = ImageFiles.Find(imagesArg);
        using var pipeline = AppHelpers.Load(model, stderr);
        pipeline.BatchSize = batch;
        var progress = new EmbedProgressLine(stderr, quiet);
        var result = FolderEmbedder.Run(pipeline, files, output, new FolderEmbedderOptions
        {
            BatchSize = batch,
            WeightsIdentity = WeightsIdentity(model.Weights),
            Progress = progress,
            OnSkipped = s => stderr.WriteLine($"skipped: {s.Error.ReplaceLineEndings(" ")}"),
            Log = m => stderr.WriteLine(m),
        });
        progress.Finish();
        var skippedNote = result.Skipped.Count > 0 ? $"; {result.Skipped.Count} image(s) skipped" : "";
        var resumedNote = result.Resumed > 0 ? $"; {result.Resumed} resumed from an earlier run" : "";
        stderr.WriteLine($"{pipeline.Spec.Name}: wrote {result.Index.Count} embeddings [{result.Index.Count},{result.Index.Dimensions}] to {output} " +
            $"and the file list to {EmbeddingIndex.FileListPath(output)}{skippedNote}{resumedNote}");
        return 0;
    }

    /// <summary>Path, size and time of the weights (every file of a checkpoint folder): a changed checkpoint is not resumed.</summary>
    static string WeightsIdentity(string path)
    {
        var files = Directory.Exists(path)
            ? Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).Select(f => new FileInfo(f))
            : [new FileInfo(path)];
        return string.Join(";", files.Select(f => string.Create(CultureInfo.InvariantCulture, $"{f.FullName}|{f.Length}|{f.LastWriteTimeUtc.Ticks}")));
    }
}

/// <summary>Progress on stderr: redrawn in place on a terminal, at most every 2 seconds when redirected.</summary>
sealed class EmbedProgressLine(TextWriter err, bool quiet) : IProgress<EmbedProgress>
{
    readonly bool _interactive = !Console.IsErrorRedirected && ReferenceEquals(err, Console.Error);
    readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();
    double _lastSeconds = double.NegativeInfinity;
    EmbedProgress? _latest;
    bool _pending;

    public void Report(EmbedProgress p)
    {
        _latest = p;
        _pending = true;
        if (quiet) return;
        var now = _clock.Elapsed.TotalSeconds;
        if (_interactive) { err.Write("\r" + Text(p) + "   "); _pending = false; return; }
        if (now - _lastSeconds < 2 && p.Done < p.Total) return;
        _lastSeconds = now;
        err.WriteLine(Text(p));
        _pending = false;
    }

    public void Finish()
    {
        if (quiet || _latest is null) return;
        if (_interactive) err.WriteLine();
        else if (_pending) err.WriteLine(Text(_latest));
    }

    static string Text(EmbedProgress p)
    {
        double seconds = p.ImagesPerSecond > 0 ? (p.Total - p.Done) / p.ImagesPerSecond : double.PositiveInfinity;
        var left = seconds < 360000 ? TimeSpan.FromSeconds(Math.Round(seconds)).ToString("c", CultureInfo.InvariantCulture) : "?";
        return string.Create(CultureInfo.InvariantCulture,
            $"embed: {p.Done}/{p.Total} images ({100.0 * p.Done / Math.Max(1, p.Total):F0}%), {p.Skipped} skipped, {p.ImagesPerSecond:F1} img/s, about {left} left");
    }
}
