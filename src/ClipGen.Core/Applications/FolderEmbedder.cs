using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using ClipGen.Datasets;

namespace ClipGen.Applications;

/// <summary>Finds the images of a folder or a glob.</summary>
public static class ImageFiles
{
    /// <summary>The extensions a folder is searched for (the formats the decoder reads).</summary>
    public static IReadOnlyList<string> Extensions { get; } = [".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif"];

    /// <summary>
    /// A folder (every image below it, recursively), a glob (<c>photos/*.jpg</c>, <c>photos/**/*.png</c>; <c>*</c> and
    /// <c>?</c> stay within a folder, <c>**</c> crosses folders) or one file. Sorted by ordinal path, so the order is
    /// the same on every run. No match is a <see cref="ClipGenException"/>.
    /// </summary>
    public static IReadOnlyList<string> Find(string folderOrGlob)
    {
        ArgumentException.ThrowIfNullOrEmpty(folderOrGlob);
        List<string> found;
        if (Directory.Exists(folderOrGlob))
        {
            found = Directory.EnumerateFiles(folderOrGlob, "*", SearchOption.AllDirectories)
                .Where(f => Extensions.Contains(Path.GetExtension(f).ToLowerInvariant()) && !Path.GetFileName(f).StartsWith('.'))
                .ToList();
            if (found.Count == 0)
                throw new ClipGenException($"no images in '{folderOrGlob}' (looked for {string.Join(", ", Extensions)} files, recursively)");
        }
        else if (folderOrGlob.IndexOfAny(['*', '?']) >= 0)
        {
            var norm = folderOrGlob.Replace('\\', '/');
            int wild = norm.IndexOfAny(['*', '?']);
            int slash = norm.LastIndexOf('/', wild);
            var baseDir = slash < 0 ? "." : norm[..Math.Max(slash, 1)];
            var pattern = slash < 0 ? norm : norm[(slash + 1)..];
            if (!Directory.Exists(baseDir)) throw new ClipGenException($"no images match '{folderOrGlob}': folder '{baseDir}' does not exist");
            var regex = new Regex("^" + GlobToRegex(pattern) + "$", RegexOptions.CultureInvariant);
            var option = pattern.Contains('/') || pattern.Contains("**", StringComparison.Ordinal) ? SearchOption.AllDirectories : SearchOption.TopDirectoryOnly;
            found = Directory.EnumerateFiles(baseDir, "*", option)
                .Where(f => regex.IsMatch(Path.GetRelativePath(baseDir, f).Replace('\\', '/')))
                .Select(f => slash < 0 ? Path.GetRelativePath(".", f) : f)
                .ToList();
            if (found.Count == 0) throw new ClipGenException($"no files match '{folderOrGlob}'");
        }
        else if (File.Exists(folderOrGlob)) found = [folderOrGlob];
        else throw new ClipGenException($"'{folderOrGlob}' is neither a folder, a file nor a glob");
        found.Sort(StringComparer.Ordinal);
        return found;
    }

    static string GlobToRegex(string glob)
    {
        var sb = new System.Text.StringBuilder();
        for (int i = 0; i < glob.Length; i++)
        {
            char c = glob[i];
            if (c == '*' && i + 1 < glob.Length && glob[i + 1] == '*')
            {
                bool dirPart = i + 2 < glob.Length && glob[i + 2] == '/';
                sb.Append(dirPart ? "(?:.*/)?" : ".*");
                i += dirPart ? 2 : 1;
            }
            else if (c == '*') sb.Append("[^/]*");
            else if (c == '?') sb.Append("[^/]");
            else sb.Append(Regex.Escape(c.ToString()));
        }
        return sb.ToString();
    }
}

/// <summary>Progress of an embedding run: items finished (embedded or skipped) of the total (0 when unknown, as for tar shards, which are streamed).</summary>
public sealed record EmbedProgress(int Done, int Total, int Skipped, double ImagesPerSecond);

/// <summary>What an embedding run writes.</summary>
public enum EmbedFormat
{
    /// <summary>ClipGen's <c>.safetensors</c> + <c>.files.txt</c> pair (<see cref="EmbeddingIndex"/>).</summary>
    ClipGen,

    /// <summary>rom1504/clip-retrieval's folder: <c>img_emb/</c>, <c>text_emb/</c>, <c>metadata/</c> (<see cref="ClipRetrievalWriter"/>).</summary>
    ClipRetrieval,
}

/// <summary>Options of <see cref="FolderEmbedder.Run"/> and <see cref="FolderEmbedder.RunSources"/>.</summary>
public sealed record FolderEmbedderOptions
{
    /// <summary>Images per forward pass and per committed batch.</summary>
    public int BatchSize { get; init; } = 64;
    /// <summary>What identifies the weights (e.g. path, size and time); a partial run made with others is started over.</summary>
    public string WeightsIdentity { get; init; } = "";
    public IProgress<EmbedProgress>? Progress { get; init; }
    /// <summary>Called for every image that cannot be read, when it is found.</summary>
    public Action<SkippedImage>? OnSkipped { get; init; }
    /// <summary>Told of resuming and starting over (Information) and of damaged shards (Warning).</summary>
    public ILogger? Logger { get; init; }
    /// <summary><see cref="Logger"/>, or a logger that drops everything.</summary>
    internal ILogger LoggerOrNull => Logger ?? NullLogger.Instance;
    public CancellationToken CancellationToken { get; init; }
    /// <summary>The output layout.</summary>
    public EmbedFormat Format { get; init; } = EmbedFormat.ClipGen;
    /// <summary>Element type of clip-retrieval's <c>.npy</c> files (float16, as clip-retrieval writes).</summary>
    public NpyDType NpyDType { get; init; } = NpyDType.Float16;
    /// <summary>Which partition of the whole input these sources are: names the output files.</summary>
    public TaskPartition Task { get; init; } = TaskPartition.Whole;
    /// <summary>The output's lock, if the caller took it already (<see cref="FolderEmbedder.Lock"/>); otherwise the run takes it.</summary>
    public FolderEmbedder.OutputLock? OutputLock { get; init; }
}

/// <summary>The outcome of <see cref="FolderEmbedder.RunSources"/>.</summary>
/// <param name="Files">The files written.</param>
/// <param name="FailedSources">Damaged shards: each message names the shard and the byte offset. The samples before the damage are in the output.</param>
/// <param name="Index">The embeddings, for <see cref="EmbedFormat.ClipGen"/>.</param>
public sealed record EmbedRunResult(long Rows, int Dimensions, bool HasText, IReadOnlyList<SkippedImage> Skipped, long Resumed,
    IReadOnlyList<string> Files, IReadOnlyList<string> FailedSources, EmbeddingIndex? Index);

/// <summary>The outcome of <see cref="FolderEmbedder.Run"/>.</summary>
public sealed record FolderEmbedderResult(EmbeddingIndex Index, IReadOnlyList<SkippedImage> Skipped, int Resumed);

/// <summary>
/// Embeds many images, resumably, from sources read in order (<see cref="EmbedSource"/>: image files, list rows,
/// WebDataset shards). Work goes to a parts folder beside the output (<see cref="PartsDirectory"/>): a <c>job.json</c>
/// naming the model, weights, format and sources, and per batch of each source its embeddings
/// (<c>sNNNNN-bNNNNNN.img.npy</c>, and <c>.txt.npy</c> when it has captions) then its record (<c>.json</c>: the rows'
/// names, captions and metadata, the skipped images, and how many items of the source have been read); when a source
/// ends, <c>sNNNNN.end.json</c>. Each file is written to a temporary file and renamed; a batch counts once its record
/// exists. An interrupted run, started again with the same arguments, skips what the records cover and embeds the
/// rest in the same batches, so the result is bit-for-bit the one an uninterrupted run gives. At the end the batches
/// are gathered in order into the output and the parts folder is deleted. The output is locked for the whole run: a
/// second run on the same output fails at once. A damaged shard ends that source (its samples before the damage are
/// kept) and is reported; the other sources go on.
/// </summary>
public static class FolderEmbedder
{
    const string JobFormat = "clipgen.embed-job/2";

    /// <summary>The work folder of an output (for the ClipGen format; clip-retrieval's is inside its folder).</summary>
    public static string PartsDirectory(string output) => Path.GetFullPath(output) + ".parts";

    /// <summary>
    /// The ClipGen-format file a task writes: <paramref name="output"/> itself for the whole input, else
    /// <c>name.{i}-of-{N}.safetensors</c> (i zero-padded like clip-retrieval's partitions).
    /// </summary>
    public static string OutputFile(string output, TaskPartition task)
    {
        if (task.Count == 1) return output;
        var ext = Path.GetExtension(output);
        var id = ClipRetrievalWriter.PartitionId(task.Index, task.Count);
        return Path.ChangeExtension(output, null) + $".{id}-of-{task.Count}" + (ext.Length > 0 ? ext : ".safetensors");
    }

    /// <summary>The file (or folder) a run writes, its parts folder and its lock file.</summary>
    static (string Target, string Parts, string Lock) Paths(string output, EmbedFormat format, TaskPartition task)
    {
        if (format == EmbedFormat.ClipGen)
        {
            var target = OutputFile(output, task);
            return (target, PartsDirectory(target), Path.GetFullPath(target) + ".lock");
        }
        if (File.Exists(output)) throw new ClipGenException($"{output} is a file; the clip-retrieval layout needs a folder");
        var id = ClipRetrievalWriter.PartitionId(task.Index, task.Count);
        var folder = Path.GetFullPath(output);
        return (output, Path.Combine(folder, $".parts-{id}"), Path.Combine(folder, $".embed-{id}.lock"));
    }

    /// <summary>
    /// Locks the output a run with these options would write, so that a caller can fail at once, before loading a
    /// model; pass the lock in <see cref="FolderEmbedderOptions.OutputLock"/>. A held lock is a <see cref="ClipGenException"/>.
    /// </summary>
    public static OutputLock Lock(string output, EmbedFormat format, TaskPartition task)
    {
        var (target, _, lockPath) = Paths(output, format, task);
        return OutputLock.Acquire(lockPath, target);
    }

    /// <summary>Embeds image files into <paramref name="output"/> (ClipGen format), as <see cref="RunSources"/>.</summary>
    public static FolderEmbedderResult Run(ClipPipeline pipeline, IReadOnlyList<string> files, string output, FolderEmbedderOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(files);
        if (files.Count == 0) throw new ClipGenException("no images to embed");
        var r = RunSources(pipeline, [EmbedSource.FromFiles(files)], output, (options ?? new()) with { Format = EmbedFormat.ClipGen });
        return new FolderEmbedderResult(r.Index!, r.Skipped, (int)r.Resumed);
    }

    /// <summary>Embeds the sources' images (and captions) into <paramref name="output"/> in <see cref="FolderEmbedderOptions.Format"/>.</summary>
    public static EmbedRunResult RunSources(ClipPipeline pipeline, IReadOnlyList<EmbedSource> sources, string output, FolderEmbedderOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        ArgumentNullException.ThrowIfNull(sources);
        ArgumentNullException.ThrowIfNull(output);
        options ??= new FolderEmbedderOptions();
        if (options.BatchSize <= 0) throw new ClipGenException($"the batch size must be positive, not {options.BatchSize}");
        void log(string message) => options.LoggerOrNull.LogInformation("{Message}", message);
        var task = options.Task;
        var (target, parts, lockPath) = Paths(output, options.Format, task);
        using var ownLock = options.OutputLock is { } held && held.Path == lockPath ? null : OutputLock.Acquire(lockPath, target);

        var job = new JsonObject
        {
            ["format"] = JobFormat,
            ["model"] = pipeline.Spec.Name,
            ["backend"] = pipeline.Backend.Kind.ToString().ToLowerInvariant(),
            ["weights"] = options.WeightsIdentity,
            ["embed_dim"] = pipeline.Dimensions,
            ["output_format"] = options.Format.ToString(),
            ["task"] = task.ToString(),
            ["sources"] = new JsonArray(sources.Select(s => (JsonNode?)JsonValue.Create(s.Name)).ToArray()),
        };
        int batchSize = PrepareParts(parts, job, options.BatchSize, log);

        var run = new Job(pipeline, parts, batchSize, options);
        long resumed = 0;
        var failed = new List<string>();
        for (int s = 0; s < sources.Count; s++)
        {
            var state = run.SourceState(s);
            resumed += state.Read;
            if (state.End is not null)
            {
                if (state.End["error"]?.GetValue<string>() is { } error) failed.Add(error);
                continue;
            }
            if (state.Read > 0) log($"resuming {sources[s].Name} after {state.Read} items done by an earlier run");
            var error2 = run.Embed(s, sources[s], state);
            if (error2 is not null) failed.Add(error2);
        }
        if (resumed > 0) log($"resuming: {resumed} items were done by an earlier run");

        var result = run.Gather(sources.Count, output, target, resumed, failed);
        Directory.Delete(parts, recursive: true);
        return result;
    }

    /// <summary>Checks the parts folder's job against this one (another job's work is discarded); returns the batch size to use.</summary>
    static int PrepareParts(string parts, JsonObject job, int batchSize, Action<string> log)
    {
        var jobPath = Path.Combine(parts, "job.json");
        if (Directory.Exists(parts))
        {
            JsonObject? old = null;
            try { old = File.Exists(jobPath) ? JsonNode.Parse(File.ReadAllText(jobPath)) as JsonObject : null; } catch (JsonException) { }
            int oldBatch = 0;
            try { oldBatch = old?["batch_size"]?.GetValue<int>() ?? 0; } catch (Exception e) when (e is InvalidOperationException or FormatException) { }
            old?.Remove("batch_size");
            if (old is not null && JsonNode.DeepEquals(old, job) && oldBatch > 0)
            {
                if (oldBatch != batchSize) log($"resuming with the interrupted run's batch size {oldBatch} (not {batchSize})");
                batchSize = oldBatch;
            }
            else
            {
                log($"{parts} holds a partial run of another model, weights or input; starting over");
                Directory.Delete(parts, recursive: true);
            }
        }
        Directory.CreateDirectory(parts);
        if (!File.Exists(jobPath))
        {
            var copy = (JsonObject)job.DeepClone();
            copy["batch_size"] = batchSize;
            AtomicFile.WriteAllText(jobPath, copy.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        }
        return batchSize;
    }

    /// <summary>A committed batch: its rows (name, caption, JSON), skipped items, and items of the source read so far.</summary>
    sealed record Batch(int Source, int Number, List<(string Location, string? Caption, string? Json)> Rows, List<SkippedImage> Skipped, long Read, bool HasText);

    sealed record SourceProgress(List<Batch> Batches, long Read, JsonObject? End);

    /// <summary>One run's state and the steps that touch the model (the only TorchSharp calls are in <see cref="EmbedPixels"/> and <see cref="EmbedTexts"/>).</summary>
    sealed class Job(ClipPipeline pipeline, string parts, int batchSize, FolderEmbedderOptions options)
    {
        readonly Stopwatch _clock = Stopwatch.StartNew();
        long _processed, _skippedNow, _resumedItems;
        float[]? _emptyText;

        static string BatchName(int s, int b) => $"s{s:D5}-b{b:D6}";

        public SourceProgress SourceState(int s)
        {
            var batches = new List<Batch>();
            for (int b = 0; ; b++)
            {
                var batch = ReadBatch(s, b);
                if (batch is null) break;
                batches.Add(batch);
            }
            JsonObject? end = null;
            var endPath = Path.Combine(parts, $"s{s:D5}.end.json");
            try { if (File.Exists(endPath)) end = JsonNode.Parse(File.ReadAllText(endPath)) as JsonObject; } catch (JsonException) { }
            long read = batches.Count > 0 ? batches[^1].Read : 0;
            _resumedItems += read;
            return new SourceProgress(batches, read, end);
        }

        Batch? ReadBatch(int s, int b)
        {
            var name = BatchName(s, b);
            var json = Path.Combine(parts, name + ".json");
            if (!File.Exists(json) || !File.Exists(Path.Combine(parts, name + ".img.npy"))) return null;
            try
            {
                if (JsonNode.Parse(File.ReadAllText(json)) is not JsonObject record) return null;
                var rows = record["rows"]!.AsArray().Select(n => (n!["image_path"]!.GetValue<string>(), n["caption"]?.GetValue<string>(), n["json"]?.GetValue<string>())).ToList();
                var skipped = record["skipped"]!.AsArray().Select(n => new SkippedImage(n!["image"]!.GetValue<string>(), n["error"]!.GetValue<string>())).ToList();
                bool hasText = record["text"]?.GetValue<bool>() ?? false;
                if (hasText && !File.Exists(Path.Combine(parts, name + ".txt.npy"))) return null;
                return new Batch(s, b, rows, skipped, record["read"]!.GetValue<long>(), hasText);
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException or NullReferenceException or FormatException) { return null; }
        }

        /// <summary>Embeds what remains of a source; returns the error of a damaged shard, or null.</summary>
        public string? Embed(int s, EmbedSource source, SourceProgress state)
        {
            long read = 0;
            int next = state.Batches.Count;
            var chunk = new List<EmbedItem>(batchSize);
            string? error = null;
            using (var items = source.Read().GetEnumerator())
            {
                while (true)
                {
                    options.CancellationToken.ThrowIfCancellationRequested();
                    EmbedItem item;
                    try
                    {
                        if (!items.MoveNext()) break;
                        item = items.Current;
                    }
                    catch (WebDatasetShardException e)
                    {
                        error = e.Message;
                        options.LoggerOrNull.LogWarning("{Message}", $"error: {e.Message}; the {read} samples before it are kept, the other shards go on");
                        break;
                    }
                    read++;
                    if (read <= state.Read) continue; // done by an earlier run
                    chunk.Add(item);
                    if (chunk.Count == batchSize)
                    {
                        Commit(s, next++, chunk, read);
                        chunk.Clear();
                    }
                }
            }
            if (chunk.Count > 0) Commit(s, next, chunk, read);
            var end = new JsonObject { ["read"] = Math.Max(read, state.Read) };
            if (error is not null) end["error"] = error;
            AtomicFile.WriteAllText(Path.Combine(parts, $"s{s:D5}.end.json"), end.ToJsonString());
            return error;
        }

        void Commit(int s, int b, List<EmbedItem> chunk, long read)
        {
            var pre = pipeline.Preprocessor;
            int per = pre.ValuesPerImage;
            var buffers = new float[chunk.Count][];
            var errors = new string?[chunk.Count];
            for (int i = 0; i < chunk.Count; i++) errors[i] = chunk[i].Error;
            Parallel.For(0, chunk.Count, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, i =>
            {
                if (errors[i] is not null) return;
                var item = chunk[i];
                try
                {
                    if (item.Data is { } data)
                    {
                        using var ms = new MemoryStream(data, writable: false);
                        buffers[i] = pre.Preprocess(ms, item.DisplayName ?? item.Location);
                    }
                    else buffers[i] = pre.Preprocess(item.FilePath ?? item.Location);
                }
                catch (ClipGenException e) { errors[i] = e.Message; }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException) { errors[i] = $"{item.Location}: {e.Message}"; }
            });
            var loaded = new List<EmbedItem>();
            var skipped = new List<SkippedImage>();
            for (int i = 0; i < chunk.Count; i++)
            {
                if (errors[i] is { } err) skipped.Add(new SkippedImage(chunk[i].Location, err));
                else loaded.Add(chunk[i]);
            }
            var pixels = new float[(long)loaded.Count * per];
            for (int i = 0, row = 0; i < chunk.Count; i++)
                if (errors[i] is null) buffers[i].CopyTo(pixels.AsSpan(row++ * per, per));

            int d = pipeline.Dimensions;
            // A batch whose images are all unreadable embeds nothing (and writes an empty array).
            var image = loaded.Count > 0 ? EmbedPixels(pixels, loaded.Count) : [];
            // The ClipGen format holds image embeddings only; clip-retrieval's also has the captions' text embeddings.
            bool hasText = options.Format == EmbedFormat.ClipRetrieval && loaded.Any(x => x.Caption is not null);
            var name = BatchName(s, b);
            WriteNpy(Path.Combine(parts, name + ".img.npy"), image, d);
            if (hasText) WriteNpy(Path.Combine(parts, name + ".txt.npy"), EmbedTexts(loaded.Select(x => x.Caption ?? "").ToList()), d);
            var record = new JsonObject
            {
                ["rows"] = new JsonArray(loaded.Select(x => (JsonNode?)new JsonObject { ["image_path"] = x.Location, ["caption"] = x.Caption, ["json"] = x.Json }).ToArray()),
                ["skipped"] = new JsonArray(skipped.Select(k => (JsonNode?)new JsonObject { ["image"] = k.Path, ["error"] = k.Error }).ToArray()),
                ["read"] = read,
                ["text"] = hasText,
            };
            AtomicFile.WriteAllText(Path.Combine(parts, name + ".json"), record.ToJsonString());
            foreach (var k in skipped) options.OnSkipped?.Invoke(k);
            _processed += chunk.Count;
            _skippedNow += skipped.Count;
            options.Progress?.Report(new EmbedProgress((int)Math.Min(int.MaxValue, _resumedItems + _processed), 0, (int)_skippedNow,
                _processed / Math.Max(1e-9, _clock.Elapsed.TotalSeconds)));
        }

        static void WriteNpy(string path, float[] values, int d)
        {
            using var ms = new MemoryStream();
            NpyFile.Write(ms, values, d, NpyDType.Float32);
            AtomicFile.WriteAllBytes(path, ms.GetBuffer().AsSpan(0, (int)ms.Length));
        }

        float[] ReadNpy(Batch batch, string suffix)
        {
            var path = Path.Combine(parts, BatchName(batch.Source, batch.Number) + suffix);
            var a = NpyFile.Read(path);
            if (a.Rows != batch.Rows.Count || (a.Rows > 0 && a.Columns != pipeline.Dimensions))
                throw new ClipGenException($"{path}: [{a.Rows}, {a.Columns}] does not hold {batch.Rows.Count} rows of {pipeline.Dimensions}; delete {parts} and run again");
            return a.Values;
        }

        // ------------------------------------------------------------------ the engine edge

        float[] EmbedPixels(float[] pixels, int count)
        {
            long side = pipeline.Preprocessor.ImageSize;
            return pipeline.EmbedImages(new ArrayTensor<float>(pixels, count, 3, side, side)).Data;
        }

        float[] EmbedTexts(IReadOnlyList<string> texts) => pipeline.EmbedTexts(texts).Data;

        // ------------------------------------------------------------------ gathering

        public EmbedRunResult Gather(int sourceCount, string output, string target, long resumed, List<string> failed)
        {
            var batches = new List<Batch>();
            for (int s = 0; s < sourceCount; s++)
                for (int b = 0; ; b++)
                {
                    var batch = ReadBatch(s, b);
                    if (batch is null) break;
                    batches.Add(batch);
                }
            int d = pipeline.Dimensions;
            long rows = batches.Sum(b => (long)b.Rows.Count);
            bool hasText = batches.Any(b => b.HasText);
            var skipped = batches.SelectMany(b => b.Skipped).ToList();
            if (options.Format == EmbedFormat.ClipGen)
            {
                if (rows * d > Array.MaxLength)
                    throw new ClipGenException($"{rows} embeddings of {d} are too many for one .safetensors index; split the input into tasks or use the clip-retrieval layout");
                var all = new float[rows * d];
                var files = new List<string>((int)rows);
                long row = 0;
                foreach (var b in batches)
                {
                    if (b.Rows.Count == 0) continue;
                    ReadNpy(b, ".img.npy").CopyTo(all.AsSpan((int)(row * d)));
                    row += b.Rows.Count;
                    files.AddRange(b.Rows.Select(r => r.Location));
                }
                var index = new EmbeddingIndex(pipeline.Spec.Name, d, files, all);
                index.Save(target);
                return new EmbedRunResult(rows, d, hasText, skipped, resumed, [target, EmbeddingIndex.FileListPath(target)], failed, index);
            }
            using var writer = new ClipRetrievalWriter(output, options.Task.Index, options.Task.Count, rows, d, hasText, options.NpyDType);
            var metadata = new List<ClipRetrievalRow>((int)Math.Min(rows, int.MaxValue));
            foreach (var b in batches)
            {
                if (b.Rows.Count == 0) continue;
                writer.AppendImageRows(ReadNpy(b, ".img.npy"));
                if (hasText)
                {
                    if (b.HasText) writer.AppendTextRows(ReadNpy(b, ".txt.npy"));
                    else
                    {
                        // Rows without a caption get the embedding of the empty text, as if "" had been their caption.
                        _emptyText ??= EmbedTexts([""]);
                        for (int i = 0; i < b.Rows.Count; i++) writer.AppendTextRows(_emptyText);
                    }
                }
                metadata.AddRange(b.Rows.Select(r => new ClipRetrievalRow(r.Location, r.Caption, r.Json)));
            }
            writer.Commit(metadata);
            return new EmbedRunResult(rows, d, hasText, skipped, resumed, writer.Files, failed, null);
        }
    }

    /// <summary>
    /// An exclusive lock on an output: a lock file opened with <see cref="FileShare.None"/> (an advisory <c>flock</c> on
    /// Unix), deleted when released. A process that dies releases it; a second run fails at once.
    /// </summary>
    public sealed class OutputLock : IDisposable
    {
        readonly FileStream _stream;
        OutputLock(FileStream stream, string path) { _stream = stream; Path = path; }

        /// <summary>The lock file.</summary>
        public string Path { get; }

        internal static OutputLock Acquire(string path, string output)
        {
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
            try
            {
                var fs = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.DeleteOnClose);
                var pid = System.Text.Encoding.ASCII.GetBytes($"{Environment.ProcessId}\n");
                fs.SetLength(0);
                fs.Write(pid);
                fs.Flush();
                return new OutputLock(fs, path);
            }
            catch (IOException e)
            {
                throw new ClipGenException($"{output} is being written by another embedding run (its lock {path} is held); wait for that run to finish or write elsewhere", e);
            }
        }

        public void Dispose() => _stream.Dispose();
    }
}
