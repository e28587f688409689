using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using ClipGen.IO;

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

/// <summary>Progress of an embedding run: images finished (embedded or skipped) of the total.</summary>
public sealed record EmbedProgress(int Done, int Total, int Skipped, double ImagesPerSecond);

/// <summary>Options of <see cref="FolderEmbedder.Run"/>.</summary>
public sealed record FolderEmbedderOptions
{
    /// <summary>Images per forward pass and per shard.</summary>
    public int BatchSize { get; init; } = 64;
    /// <summary>What identifies the weights (e.g. path, size and time); a partial run made with others is started over.</summary>
    public string WeightsIdentity { get; init; } = "";
    public IProgress<EmbedProgress>? Progress { get; init; }
    /// <summary>Called for every image that cannot be read, when it is found.</summary>
    public Action<SkippedImage>? OnSkipped { get; init; }
    /// <summary>Notes (resuming, starting over).</summary>
    public Action<string>? Log { get; init; }
    public CancellationToken CancellationToken { get; init; }
}

/// <summary>The outcome of <see cref="FolderEmbedder.Run"/>.</summary>
public sealed record FolderEmbedderResult(EmbeddingIndex Index, IReadOnlyList<SkippedImage> Skipped, int Resumed);

/// <summary>
/// Embeds many images into an <see cref="EmbeddingIndex"/>, resumably. Work goes to <c>&lt;output&gt;.parts/</c>: a
/// <c>job.json</c> naming the model and weights, and per batch a shard (<c>shard-NNNNNN.safetensors</c>) then its
/// record (<c>shard-NNNNNN.json</c>: the images in row order and the ones skipped), each written to a temporary
/// file and renamed; a shard counts once its record exists. An interrupted run, started again with the same
/// arguments, skips the recorded images and processes the rest in the same batches, so the result is bit-for-bit
/// the one an uninterrupted run gives. At the end the shards are gathered in file order into the output and its
/// file list, and the parts folder is deleted.
/// </summary>
public static class FolderEmbedder
{
    const string JobFormat = "clipgen.embed-job/1";

    /// <summary>The work folder of an output.</summary>
    public static string PartsDirectory(string output) => Path.GetFullPath(output) + ".parts";

    public static FolderEmbedderResult Run(ClipPipeline pipeline, IReadOnlyList<string> files, string output, FolderEmbedderOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        ArgumentNullException.ThrowIfNull(files);
        ArgumentNullException.ThrowIfNull(output);
        options ??= new FolderEmbedderOptions();
        if (options.BatchSize <= 0) throw new ClipGenException($"the batch size must be positive, not {options.BatchSize}");
        if (files.Count == 0) throw new ClipGenException("no images to embed");
        var log = options.Log ?? (_ => { });
        var parts = PartsDirectory(output);
        Directory.CreateDirectory(Path.GetDirectoryName(parts)!);

        // The job's identity: a partial run of another model, backend or weights is not resumed.
        var job = new JsonObject
        {
            ["format"] = JobFormat,
            ["model"] = pipeline.Spec.Name,
            ["backend"] = pipeline.Backend.Kind.ToString().ToLowerInvariant(),
            ["weights"] = options.WeightsIdentity,
            ["embed_dim"] = pipeline.Dimensions,
        };
        int batchSize = options.BatchSize;
        var jobPath = Path.Combine(parts, "job.json");
        if (File.Exists(jobPath))
        {
            JsonObject? old = null;
            try { old = JsonNode.Parse(File.ReadAllText(jobPath)) as JsonObject; } catch (JsonException) { }
            int oldBatch = old?["batch_size"]?.GetValue<int>() ?? 0;
            old?.Remove("batch_size");
            if (old is not null && JsonNode.DeepEquals(old, job) && oldBatch > 0)
            {
                if (oldBatch != batchSize) log($"resuming with the interrupted run's batch size {oldBatch} (not {batchSize})");
                batchSize = oldBatch;
            }
            else
            {
                log($"{parts} holds a partial run of another model or weights; starting over");
                Directory.Delete(parts, recursive: true);
            }
        }
        Directory.CreateDirectory(parts);
        if (!File.Exists(jobPath))
        {
            job["batch_size"] = batchSize;
            AtomicFile.WriteAllText(jobPath, job.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        }

        // What earlier runs finished.
        var shards = ReadShards(parts, pipeline.Dimensions);
        var done = new HashSet<string>(StringComparer.Ordinal);
        foreach (var s in shards)
        {
            done.UnionWith(s.Images);
            done.UnionWith(s.Skipped.Select(x => x.Path));
        }
        var skipped = new List<SkippedImage>();
        var todo = new List<string>();
        foreach (var f in files)
        {
            if (done.Contains(f)) continue;
            todo.Add(f);
        }
        int resumed = files.Count - todo.Count;
        if (resumed > 0) log($"resuming: {resumed} of {files.Count} images were done by an earlier run");
        int next = shards.Count == 0 ? 0 : shards.Max(s => s.Number) + 1;
        var fileSet = new HashSet<string>(files, StringComparer.Ordinal);
        int alreadySkipped = shards.Sum(s => s.Skipped.Count(x => fileSet.Contains(x.Path)));

        var clock = Stopwatch.StartNew();
        int processed = 0, skippedNow = 0;
        for (int start = 0; start < todo.Count; start += batchSize)
        {
            options.CancellationToken.ThrowIfCancellationRequested();
            var chunk = todo.GetRange(start, Math.Min(batchSize, todo.Count - start));
            var bad = chunk.Where(f => f.Contains('\n') || f.Contains('\r')).Select(f => new SkippedImage(f, $"{f}: the file name contains a line break")).ToList();
            var (pixels, loaded, failed) = pipeline.TryPreprocessImages(chunk.Where(f => !f.Contains('\n') && !f.Contains('\r')).ToList());
            bad.AddRange(failed);
            float[] vectors;
            using (pixels)
            using (var emb = pipeline.EmbedImages(pixels))
                vectors = emb.contiguous().data<float>().ToArray();
            var name = $"shard-{next++:D6}";
            SafeTensorsWriter.Write(Path.Combine(parts, name + ".safetensors"), [SafeTensor.F32(EmbeddingIndex.TensorName, vectors, loaded.Count, pipeline.Dimensions)]);
            var record = new JsonObject
            {
                ["images"] = new JsonArray(loaded.Select(f => (JsonNode?)JsonValue.Create(f)).ToArray()),
                ["skipped"] = new JsonArray(bad.Select(b => (JsonNode?)new JsonObject { ["image"] = b.Path, ["error"] = b.Error }).ToArray()),
            };
            AtomicFile.WriteAllText(Path.Combine(parts, name + ".json"), record.ToJsonString());
            foreach (var b in bad) options.OnSkipped?.Invoke(b);
            processed += chunk.Count;
            skippedNow += bad.Count;
            options.Progress?.Report(new EmbedProgress(resumed + processed, files.Count, alreadySkipped + skippedNow, processed / Math.Max(1e-9, clock.Elapsed.TotalSeconds)));
        }

        // Gather in file order.
        shards = ReadShards(parts, pipeline.Dimensions);
        var rows = new Dictionary<string, (Shard Shard, int Row)>(StringComparer.Ordinal);
        var skippedAll = new Dictionary<string, SkippedImage>(StringComparer.Ordinal);
        foreach (var s in shards)
        {
            for (int i = 0; i < s.Images.Count; i++) rows[s.Images[i]] = (s, i);
            foreach (var x in s.Skipped) skippedAll[x.Path] = x;
        }
        int d = pipeline.Dimensions;
        var kept = files.Where(rows.ContainsKey).ToList();
        var all = new float[(long)kept.Count * d];
        var cache = new Dictionary<int, float[]>();
        for (int i = 0; i < kept.Count; i++)
        {
            var (shard, row) = rows[kept[i]];
            if (!cache.TryGetValue(shard.Number, out var data)) cache[shard.Number] = data = shard.ReadVectors();
            data.AsSpan(row * d, d).CopyTo(all.AsSpan(i * d, d));
        }
        skipped.AddRange(files.Where(skippedAll.ContainsKey).Select(f => skippedAll[f]));
        var index = new EmbeddingIndex(pipeline.Spec.Name, d, kept, all);
        index.Save(output);
        Directory.Delete(parts, recursive: true);
        return new FolderEmbedderResult(index, skipped, resumed);
    }

    sealed record Shard(int Number, string Path, IReadOnlyList<string> Images, IReadOnlyList<SkippedImage> Skipped, int Dimensions)
    {
        public float[] ReadVectors()
        {
            var sd = Checkpoints.CheckpointLoader.ReadStateDict(Path);
            using (sd)
            {
                var t = sd.Tensors[EmbeddingIndex.TensorName];
                if (t.shape[0] != Images.Count || (Images.Count > 0 && t.shape[1] != Dimensions))
                    throw new ClipGenException($"{Path}: [{string.Join(",", t.shape)}] does not hold {Images.Count} rows of {Dimensions}; delete {System.IO.Path.GetDirectoryName(Path)} and run again");
                return t.contiguous().data<float>().ToArray();
            }
        }
    }

    /// <summary>The committed shards: those whose record exists (a shard without its record is redone).</summary>
    static List<Shard> ReadShards(string parts, int dims)
    {
        var result = new List<Shard>();
        foreach (var json in Directory.EnumerateFiles(parts, "shard-*.json"))
        {
            var name = Path.GetFileNameWithoutExtension(json);
            if (!int.TryParse(name.AsSpan(6), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var number)) continue;
            var tensorPath = Path.Combine(parts, name + ".safetensors");
            if (!File.Exists(tensorPath)) continue;
            JsonObject? record;
            try { record = JsonNode.Parse(File.ReadAllText(json)) as JsonObject; }
            catch (JsonException) { continue; }
            if (record is null) continue;
            var images = record["images"]?.AsArray().Select(n => n!.GetValue<string>()).ToList() ?? [];
            var skipped = record["skipped"]?.AsArray().Select(n => new SkippedImage(n!["image"]!.GetValue<string>(), n["error"]!.GetValue<string>())).ToList() ?? [];
            result.Add(new Shard(number, tensorPath, images, skipped, dims));
        }
        result.Sort((a, b) => a.Number.CompareTo(b.Number));
        return result;
    }
}
