using System.CommandLine;
using System.Globalization;
using ClipGen.Applications;
using ClipGen.Datasets;

namespace ClipGen.Cli.Commands;

/// <summary>
/// <c>clipgen embed</c>: image (and caption) embeddings of a folder, glob, image list or WebDataset shards, resumable,
/// into ClipGen's safetensors index or clip-retrieval's npy + parquet layout; <c>--tasks i/N</c> takes one partition.
/// </summary>
sealed class EmbedCommand : CliCommand
{
    readonly ModelOptionSet _model;
    readonly Option<string?> _input, _images, _output, _format, _dtype, _imageColumn, _captionColumn;
    readonly Option<TaskPartition> _tasks;
    readonly Option<int> _batch, _connectivity, _expansionAdd;
    readonly Option<bool> _quiet, _hnsw, _int8;

    public EmbedCommand() : base("embed", "embed images (folder, glob, CSV/parquet list, WebDataset shards) into a safetensors index or clip-retrieval files (resumable)")
    {
        _model = new ModelOptionSet(this);
        _input = Add(CliOptions.Text("--input", "folder|glob|list.csv|list.parquet|\"shards/{00000..00099}.tar\"", "the images (required, or --images)"));
        _images = Add(CliOptions.Text("--images", "folder|glob|list", "an older name of --input"));
        _output = Required(CliOptions.Text("--output", "embeddings.safetensors|folder", "the index file (clipgen format) or folder (clip-retrieval)"));
        _format = Add(CliOptions.Text("--format", "clipgen|clip-retrieval", "the output layout (default clipgen)"));
        _dtype = Add(CliOptions.Text("--dtype", "float16|float32", "the npy dtype of --format clip-retrieval (default float16)"));
        _tasks = Add(CliOptions.Parsed("--tasks", "i/N", "embed only the i-th (from 0) of N parts of the input", TaskPartition.Parse, TaskPartition.Whole));
        _imageColumn = Add(CliOptions.Text("--image-column", "NAME", $"the image column of a CSV/parquet list (default {ImageListReader.DefaultImageColumn})"));
        _captionColumn = Add(CliOptions.Text("--caption-column", "NAME", $"the caption column of a list (default {ImageListReader.DefaultCaptionColumn}; required to exist when given)"));
        _batch = Add(CliOptions.Int("--batch-size", 64, "images per batch", min: 1));
        _hnsw = Add(CliOptions.Flag("--hnsw", "also build an HNSW graph beside the index, for fast search"));
        _int8 = Add(CliOptions.Flag("--int8", "store the HNSW graph's vectors as int8 (with --hnsw)"));
        _connectivity = Add(CliOptions.Int("--connectivity", new Indexing.HnswOptions().Connectivity, "HNSW links per node", min: 2));
        _expansionAdd = Add(CliOptions.Int("--expansion-add", new Indexing.HnswOptions().ExpansionAdd, "HNSW candidates while building", min: 1));
        _quiet = Add(CliOptions.Flag("--quiet", "no progress lines"));
    }

    public override int Run(ParseResult args, TextWriter stdout, TextWriter stderr)
    {
        var model = _model.Read(args);
        var input = args.GetValue(_input);
        var images = args.GetValue(_images);
        var output = Value(args, _output);
        int batch = args.GetValue(_batch);
        bool quiet = args.GetValue(_quiet);
        var formatArg = args.GetValue(_format) ?? "clipgen";
        var dtypeArg = args.GetValue(_dtype);
        var task = args.GetValue(_tasks);
        var imageColumn = args.GetValue(_imageColumn);
        var captionColumn = args.GetValue(_captionColumn);
        bool hnsw = args.GetValue(_hnsw);
        bool int8 = args.GetValue(_int8);
        int connectivity = args.GetValue(_connectivity);
        int expansionAdd = args.GetValue(_expansionAdd);
        if ((input is null) == (images is null)) throw new CliUsageException(input is null ? "missing required option --input (or --images)" : "give --input or --images, not both");
        input ??= images!;
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

        var resolved = EmbedInputs.Resolve(input, task, ImageFiles.Find,
            imageColumn ?? ImageListReader.DefaultImageColumn, captionColumn ?? ImageListReader.DefaultCaptionColumn, captionRequired: captionColumn is not null);
        foreach (var p in resolved.Problems) stderr.WriteLine($"skipped {p}");
        if (task.Count > 1)
            stderr.WriteLine($"task {task}: {(resolved.Kind == "shards" ? $"{resolved.Sources.Count} of {resolved.TotalUnits} shards" : $"{resolved.Items} of {resolved.TotalUnits} images")}");

        // Locked before the model loads, so that a second run on the same output stops at once.
        using var outputLock = FolderEmbedder.Lock(output, format, task);
        using var pipeline = AppHelpers.Load(model, stderr);
        pipeline.BatchSize = batch;
        EmbedRunResult Embed(IProgress<EmbedProgress> progress) => FolderEmbedder.RunSources(pipeline, resolved.Sources, output, new FolderEmbedderOptions
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
        EmbedRunResult result;
        if (!quiet && CliProgress.Interactive(stderr))
            result = CliProgress.Show("embed", bytes: false, bar => Embed(new EmbedBar(bar, resolved.Items)));
        else
        {
            var lines = new EmbedProgressLine(stderr, quiet, resolved.Items);
            result = Embed(lines);
            lines.Finish();
        }
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

/// <summary>Progress on a terminal: a Spectre.Console bar of images done out of the total, with the rate and what is skipped.</summary>
sealed class EmbedBar(CliProgress.Bar bar, int total) : IProgress<EmbedProgress>
{
    public void Report(EmbedProgress p)
    {
        int all = p.Total > 0 ? p.Total : total;
        bar.Update(p.Done, all > 0 ? all : null, string.Create(CultureInfo.InvariantCulture, $"embed {p.Done}/{all} ({p.Skipped} skipped, {p.ImagesPerSecond:F1} img/s)"));
    }
}

/// <summary>Progress as plain lines on stderr (redirected output, CI, tests): at most every 2 seconds, and the last.</summary>
sealed class EmbedProgressLine(TextWriter err, bool quiet, int total = 0) : IProgress<EmbedProgress>
{
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
        if (now - _lastSeconds < 2 && (p.Total == 0 || p.Done < p.Total)) return;
        _lastSeconds = now;
        err.WriteLine(Text(p));
        _pending = false;
    }

    public void Finish()
    {
        if (quiet || _latest is null) return;
        if (_pending) err.WriteLine(Text(_latest));
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
