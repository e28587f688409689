using System.Globalization;
using ClipGen.Applications;
using ClipGen.Datasets;

namespace ClipGen.Cli.Commands;

/// <summary>
/// <c>clipgen embed</c>: image (and caption) embeddings of a folder, glob, image list or WebDataset shards, resumable,
/// into ClipGen's safetensors index or clip-retrieval's npy + parquet layout; <c>--tasks i/N</c> takes one partition.
/// </summary>
sealed class EmbedCommand : ICommand
{
    public string Name => "embed";
    public string Summary => "embed images (folder, glob, CSV/parquet list, WebDataset shards) into a safetensors index or clip-retrieval files (resumable)";
    public string Usage => "clipgen embed " + AppHelpers.ModelUsage + " --input <folder|glob|list.csv|list.parquet|\"shards/{00000..00099}.tar\"> --output <embeddings.safetensors|folder> " +
        "[--format clipgen|clip-retrieval] [--dtype float16|float32] [--tasks i/N] [--image-column filepath] [--caption-column title] [--batch-size N] " +
        "[--hnsw [--int8] [--connectivity 32] [--expansion-add 128]] [--quiet]   (--images is an alias of --input)";

    public int Run(CliArgs args, TextWriter stdout, TextWriter stderr)
    {
        var model = AppHelpers.ModelOptions(args);
        var input = args.Get("input");
        var images = args.Get("images");
        var output = args.Require("output");
        int batch = args.GetInt("batch-size", 64);
        bool quiet = args.Has("quiet");
        var formatArg = args.Get("format") ?? "clipgen";
        var dtypeArg = args.Get("dtype");
        var tasksArg = args.Get("tasks");
        var imageColumn = args.Get("image-column");
        var captionColumn = args.Get("caption-column");
        bool hnsw = args.Has("hnsw");
        bool int8 = args.Has("int8");
        int connectivity = args.GetInt("connectivity", new Indexing.HnswOptions().Connectivity);
        int expansionAdd = args.GetInt("expansion-add", new Indexing.HnswOptions().ExpansionAdd);
        args.RejectUnknown();
        if ((input is null) == (images is null)) throw new CliUsageException(input is null ? "missing required option --input (or --images)" : "give --input or --images, not both");
        input ??= images!;
        if (batch <= 0) throw new CliUsageException($"--batch-size must be positive, not {batch}");
        var format = formatArg switch
        {
            "clipgen" or "safetensors" => EmbedFormat.ClipGen,
            "clip-retrieval" => EmbedFormat.ClipRetrieval,
            _ => throw new CliUsageException($"--format is clipgen or clip-retrieval, not '{formatArg}'"),
        };
        var dtype = dtypeArg switch
        {
            null or "float16" or "fp16" => NpyDType.Float16,
            "float32" or "fp32" => NpyDType.Float32,
            _ => throw new CliUsageException($"--dtype is float16 or float32, not '{dtypeArg}'"),
        };
        if (dtypeArg is not null && format != EmbedFormat.ClipRetrieval) throw new CliUsageException("--dtype applies to --format clip-retrieval (the safetensors index is float32)");
        if ((hnsw || int8) && format != EmbedFormat.ClipGen) throw new CliUsageException("--hnsw builds an index beside a --format clipgen output");
        if (int8 && !hnsw) throw new CliUsageException("--int8 is an option of --hnsw");
        var task = tasksArg is null ? TaskPartition.Whole : TaskPartition.Parse(tasksArg);

        var resolved = EmbedInputs.Resolve(input, task, ImageFiles.Find,
            imageColumn ?? ImageListReader.DefaultImageColumn, captionColumn ?? ImageListReader.DefaultCaptionColumn, captionRequired: captionColumn is not null);
        foreach (var p in resolved.Problems) stderr.WriteLine($"skipped {p}");
        if (task.Count > 1)
            stderr.WriteLine($"task {task}: {(resolved.Kind == "shards" ? $"{resolved.Sources.Count} of {resolved.TotalUnits} shards" : $"{resolved.Items} of {resolved.TotalUnits} images")}");

        // Locked before the model loads, so that a second run on the same output stops at once.
        using var outputLock = FolderEmbedder.Lock(output, format, task);
        using var pipeline = AppHelpers.Load(model, stderr);
        pipeline.BatchSize = batch;
        var progress = new EmbedProgressLine(stderr, quiet, resolved.Items);
        var result = FolderEmbedder.RunSources(pipeline, resolved.Sources, output, new FolderEmbedderOptions
        {
            BatchSize = batch,
            WeightsIdentity = WeightsIdentity(model.Weights),
            Progress = progress,
            OnSkipped = s => stderr.WriteLine($"skipped: {s.Error.ReplaceLineEndings(" ")}"),
            Logger = new LineLogger(stderr),
            Format = format,
            NpyDType = dtype,
            Task = task,
            OutputLock = outputLock,
        });
        progress.Finish();
        var skippedNote = result.Skipped.Count > 0 ? $"; {result.Skipped.Count} image(s) skipped" : "";
        var resumedNote = result.Resumed > 0 ? $"; {result.Resumed} resumed from an earlier run" : "";
        var textNote = result.HasText ? " with their captions' text embeddings" : "";
        stderr.WriteLine($"{pipeline.Spec.Name}: wrote {result.Rows} embeddings [{result.Rows},{result.Dimensions}]{textNote} to {string.Join(", ", result.Files)}{skippedNote}{resumedNote}");

        if (hnsw && result.Index is { } index)
        {
            var path = EmbeddingIndex.HnswPath(result.Files[0]);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            using var graph = Indexing.HnswVectorIndex.Build(index.Exact, new Indexing.HnswOptions
            {
                Storage = int8 ? Indexing.VectorStorage.Int8 : Indexing.VectorStorage.Float32,
                Connectivity = connectivity,
                ExpansionAdd = expansionAdd,
            });
            graph.Save(path);
            stderr.WriteLine(string.Create(CultureInfo.InvariantCulture, $"HNSW index ({(int8 ? "int8" : "float32")}) of {graph.Count} rows written to {path} in {clock.Elapsed.TotalSeconds:F1} s"));
        }
        if (result.FailedSources.Count > 0)
        {
            foreach (var f in result.FailedSources) stderr.WriteLine($"error: {f}");
            stderr.WriteLine($"{result.FailedSources.Count} shard(s) could not be read to the end; the output holds their samples before the damage");
            return 2;
        }
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
sealed class EmbedProgressLine(TextWriter err, bool quiet, int total = 0) : IProgress<EmbedProgress>
{
    readonly bool _interactive = !Console.IsErrorRedirected && ReferenceEquals(err, Console.Error);
    readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();
    double _lastSeconds = double.NegativeInfinity;
    EmbedProgress? _latest;
    bool _pending;

    public void Report(EmbedProgress p)
    {
        if (p.Total == 0 && total > 0) p = p with { Total = total };
        _latest = p;
        _pending = true;
        if (quiet) return;
        var now = _clock.Elapsed.TotalSeconds;
        if (_interactive) { err.Write("\r" + Text(p) + "   "); _pending = false; return; }
        if (now - _lastSeconds < 2 && (p.Total == 0 || p.Done < p.Total)) return;
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
        if (p.Total <= 0)
            return string.Create(CultureInfo.InvariantCulture, $"embed: {p.Done} images, {p.Skipped} skipped, {p.ImagesPerSecond:F1} img/s");
        double seconds = p.ImagesPerSecond > 0 ? (p.Total - p.Done) / p.ImagesPerSecond : double.PositiveInfinity;
        var left = seconds < 360000 ? TimeSpan.FromSeconds(Math.Round(seconds)).ToString("c", CultureInfo.InvariantCulture) : "?";
        return string.Create(CultureInfo.InvariantCulture,
            $"embed: {p.Done}/{p.Total} images ({100.0 * p.Done / Math.Max(1, p.Total):F0}%), {p.Skipped} skipped, {p.ImagesPerSecond:F1} img/s, about {left} left");
    }
}
