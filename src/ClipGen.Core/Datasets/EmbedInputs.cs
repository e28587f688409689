using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace ClipGen.Datasets;

/// <summary>
/// One image to embed: where it is (<see cref="FilePath"/>) or its bytes (<see cref="Data"/>, from a tar shard), what
/// to call it in the output (<see cref="Location"/>: the file path, or a WebDataset sample's key), and its caption and
/// JSON metadata if it has them. <see cref="Error"/> marks an entry that was found broken while it was read; it is
/// reported as skipped.
/// </summary>
public sealed record EmbedItem(string Location)
{
    public string? FilePath { get; init; }
    public byte[]? Data { get; init; }
    public string? Caption { get; init; }
    public string? Json { get; init; }
    public string? Error { get; init; }
    /// <summary>How errors name the image when <see cref="Location"/> alone is not enough (a shard member: <c>shard.tar/key.jpg</c>).</summary>
    public string? DisplayName { get; init; }
}

/// <summary>
/// A deterministic sequence of images: the unit that embedding resumes within (by position) and that
/// <see cref="TaskPartition"/> hands out. Reading the same source twice gives the same items in the same order.
/// </summary>
public abstract class EmbedSource
{
    /// <summary>Identifies the source in job records and messages (a shard's path; a list's name and digest).</summary>
    public abstract string Name { get; }

    /// <summary>The items in order. A shard that turns out damaged throws <see cref="WebDatasetShardException"/> after the items before the damage.</summary>
    public abstract IEnumerable<EmbedItem> Read();

    /// <summary>Image files (and captions, if given), embedded in the order given.</summary>
    public static EmbedSource FromFiles(IReadOnlyList<string> paths, IReadOnlyList<string?>? captions = null, string name = "files") => new FileSource(paths, captions, name);

    /// <summary>The samples of one WebDataset tar shard.</summary>
    public static EmbedSource FromShard(string path) => new ShardSource(path);

    sealed class FileSource : EmbedSource
    {
        readonly IReadOnlyList<string> _paths;
        readonly IReadOnlyList<string?>? _captions;

        public FileSource(IReadOnlyList<string> paths, IReadOnlyList<string?>? captions, string name)
        {
            ArgumentNullException.ThrowIfNull(paths);
            if (captions is not null && captions.Count != paths.Count) throw new ArgumentException($"{captions.Count} captions for {paths.Count} files", nameof(captions));
            _paths = paths; _captions = captions;
            // The digest makes a changed list a different source (its partial work is not resumed).
            var sb = new StringBuilder();
            for (int i = 0; i < paths.Count; i++) sb.Append(paths[i]).Append('\n').Append(captions?[i] ?? "\u0001").Append('\n');
            Name = $"{name} ({paths.Count} images, sha256 {Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString())))[..16]})";
        }

        public override string Name { get; }

        public override IEnumerable<EmbedItem> Read()
        {
            for (int i = 0; i < _paths.Count; i++)
            {
                var p = _paths[i];
                if (p.Contains('\n') || p.Contains('\r')) yield return new EmbedItem(p) { Error = $"{p}: the file name contains a line break" };
                else yield return new EmbedItem(p) { FilePath = p, Caption = _captions?[i] };
            }
        }
    }

    sealed class ShardSource(string path) : EmbedSource
    {
        public override string Name => path;

        public override IEnumerable<EmbedItem> Read()
        {
            var problems = new Queue<WebDatasetProblem>();
            foreach (var sample in WebDatasetReader.Read(path, problems.Enqueue))
            {
                while (problems.Count > 0)
                {
                    var p = problems.Dequeue();
                    yield return new EmbedItem(p.Key) { Error = p.ToString() };
                }
                var image = sample.Image;
                if (image is null)
                {
                    yield return new EmbedItem(sample.Key) { Error = $"{path}: sample '{sample.Key}' at byte {sample.Offset} has no image ({string.Join(", ", WebDatasetSample.ImageExtensions)}); it has {string.Join(", ", sample.Files.Keys)}" };
                    continue;
                }
                yield return new EmbedItem(sample.Key)
                {
                    Data = image.Value.Data, Caption = sample.Caption, Json = sample.Json, DisplayName = $"{path}/{sample.Key}.{image.Value.Extension}",
                };
            }
            while (problems.Count > 0)
            {
                var p = problems.Dequeue();
                yield return new EmbedItem(p.Key) { Error = p.ToString() };
            }
        }
    }
}

/// <summary><c>i/N</c>: the i-th (0-based) of N contiguous, near-equal parts of an ordered list.</summary>
public readonly partial record struct TaskPartition(int Index, int Count)
{
    public static TaskPartition Whole => new(0, 1);

    public static TaskPartition Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var m = Pattern().Match(text.Trim());
        if (!m.Success || !int.TryParse(m.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out int i)
            || !int.TryParse(m.Groups[2].Value, NumberStyles.None, CultureInfo.InvariantCulture, out int n))
            throw new ClipGenException($"task '{text}' is not of the form i/N (e.g. 3/100, i counted from 0)");
        if (n < 1 || i >= n) throw new ClipGenException($"task '{text}': i must be in 0..N-1 and N at least 1");
        return new TaskPartition(i, n);
    }

    /// <summary>Items [⌊i·M/N⌋, ⌊(i+1)·M/N⌋) of <paramref name="all"/>: disjoint, their union is the whole list, in order.</summary>
    public IReadOnlyList<T> Select<T>(IReadOnlyList<T> all)
    {
        ArgumentNullException.ThrowIfNull(all);
        int from = (int)((long)all.Count * Index / Count), to = (int)((long)all.Count * (Index + 1) / Count);
        var part = new T[to - from];
        for (int k = from; k < to; k++) part[k - from] = all[k];
        return part;
    }

    public override string ToString() => $"{Index}/{Count}";

    [GeneratedRegex(@"^(\d{1,9})\s*/\s*(\d{1,9})$")]
    private static partial Regex Pattern();
}

/// <summary>What <see cref="EmbedInputs.Resolve"/> found.</summary>
public sealed record ResolvedInput(string Kind, IReadOnlyList<EmbedSource> Sources, int TotalUnits, int Items, IReadOnlyList<ImageListProblem> Problems);

/// <summary>Turns an <c>--input</c> text into sources: shards, an image list, or image files.</summary>
public static class EmbedInputs
{
    /// <summary>
    /// Resolves <paramref name="input"/>: braces are expanded first (<c>shard-{00000..00099}.tar</c>); if every name
    /// (globs allowed: <c>shards/*.tar</c>) is a <c>.tar</c> file, each shard is a source and the task takes its share
    /// of the shard list. A <c>.csv</c>/<c>.tsv</c>/<c>.parquet</c> file is an image list; anything else is a folder,
    /// glob or file of images. Lists and files are one source, the task's contiguous share of the rows.
    /// </summary>
    public static ResolvedInput Resolve(string input, TaskPartition task, Func<string, IReadOnlyList<string>> findImages,
        string imageColumn = ImageListReader.DefaultImageColumn, string captionColumn = ImageListReader.DefaultCaptionColumn, bool captionRequired = false)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(input);
        ArgumentNullException.ThrowIfNull(findImages);
        var names = BraceExpansion.Expand(input);
        if (names.All(n => n.EndsWith(".tar", StringComparison.OrdinalIgnoreCase)))
        {
            var shards = new List<string>();
            foreach (var n in names)
            {
                if (n.IndexOfAny(['*', '?']) >= 0) shards.AddRange(Glob(n));
                else if (File.Exists(n)) shards.Add(n);
                else throw new ClipGenException($"shard not found: {n}");
            }
            if (shards.Count == 0) throw new ClipGenException($"no shards match '{input}'");
            var dup = shards.GroupBy(s => Path.GetFullPath(s)).FirstOrDefault(g => g.Count() > 1);
            if (dup is not null) throw new ClipGenException($"'{input}' names the shard {dup.First()} more than once");
            var mine = task.Select(shards);
            return new ResolvedInput("shards", mine.Select(EmbedSource.FromShard).ToList(), shards.Count, -1, []);
        }
        if (names.Count == 1 && ImageListReader.IsList(names[0]))
        {
            var list = ImageListReader.Read(names[0], imageColumn, captionColumn, captionRequired);
            if (list.Entries.Count == 0) throw new ClipGenException($"{names[0]}: no images listed ({list.Problems.Count} rows skipped)");
            var mine = task.Select(list.Entries);
            var source = EmbedSource.FromFiles(mine.Select(e => e.Path).ToList(), list.HasCaptions ? mine.Select(e => e.Caption).ToList() : null, Path.GetFileName(names[0]));
            return new ResolvedInput("list", [source], list.Entries.Count, mine.Count, list.Problems);
        }
        var files = new List<string>();
        foreach (var n in names) files.AddRange(findImages(n));
        var part = task.Select(files);
        return new ResolvedInput("files", [EmbedSource.FromFiles(part)], files.Count, part.Count, []);
    }

    /// <summary>Files matching a glob (<c>*</c>, <c>?</c> within a folder), sorted by ordinal path.</summary>
    static IEnumerable<string> Glob(string pattern)
    {
        var norm = pattern.Replace('\\', '/');
        int slash = norm.LastIndexOf('/');
        var dir = slash < 0 ? "." : norm[..Math.Max(slash, 1)];
        var file = slash < 0 ? norm : norm[(slash + 1)..];
        if (dir.IndexOfAny(['*', '?']) >= 0) throw new ClipGenException($"'{pattern}': wildcards are only allowed in the file name of a shard pattern");
        if (!Directory.Exists(dir)) throw new ClipGenException($"no shards match '{pattern}': folder '{dir}' does not exist");
        return Directory.EnumerateFiles(dir, file).Select(f => slash < 0 ? Path.GetRelativePath(".", f) : f).Order(StringComparer.Ordinal);
    }
}
