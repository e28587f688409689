using System.Security.Cryptography;
using System.Text;
using ClipGen.IO;
using ClipGen.Indexing;

namespace ClipGen.Applications;

/// <summary>One search result: a row of the index, its file and its cosine similarity to the query.</summary>
public readonly record struct SearchHit(int Row, string File, double Score);

/// <summary>
/// Image embeddings on disk, readable from Python (see docs/embeddings.md): a safetensors file with one tensor
/// <c>embeddings</c>, float32 [N, D], unit rows, plus a UTF-8 sidecar <c>&lt;name&gt;.files.txt</c> with the N image
/// paths, one per line, in row order. The safetensors metadata records the format, the model, the row count and
/// the sidecar's sha256.
/// </summary>
public sealed class EmbeddingIndex
{
    /// <summary>Value of the <c>format</c> metadata entry.</summary>
    public const string FormatName = "clipgen.embeddings/1";
    /// <summary>Name of the tensor.</summary>
    public const string TensorName = "embeddings";

    readonly float[] _vectors;
    ExactVectorIndex? _exact;

    public EmbeddingIndex(string model, int dimensions, IReadOnlyList<string> files, float[] vectors)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(files);
        ArgumentNullException.ThrowIfNull(vectors);
        if (dimensions <= 0) throw new ArgumentOutOfRangeException(nameof(dimensions));
        if (vectors.Length != (long)files.Count * dimensions)
            throw new ArgumentException($"{vectors.Length} floats do not make {files.Count} rows of {dimensions}", nameof(vectors));
        foreach (var f in files)
            if (f.Contains('\n') || f.Contains('\r')) throw new ArgumentException($"file name with a line break: {f}", nameof(files));
        Model = model;
        Dimensions = dimensions;
        Files = files.ToArray();
        _vectors = vectors;
    }

    /// <summary>The spec name of the model that made the embeddings.</summary>
    public string Model { get; }
    public int Dimensions { get; }
    public IReadOnlyList<string> Files { get; }
    public int Count => Files.Count;

    /// <summary>Row-major [Count, Dimensions].</summary>
    public ReadOnlySpan<float> Vectors => _vectors;

    /// <summary>Row <paramref name="i"/>.</summary>
    public ReadOnlySpan<float> this[int i] => _vectors.AsSpan(i * Dimensions, Dimensions);

    /// <summary>The sidecar of an index file: <c>photos.safetensors</c> → <c>photos.files.txt</c>.</summary>
    public static string FileListPath(string indexPath) => Path.ChangeExtension(indexPath, null) + ".files.txt";

    /// <summary>The HNSW graph beside an index file: <c>photos.safetensors</c> → <c>photos.usearch</c>.</summary>
    public static string HnswPath(string indexPath) => Path.ChangeExtension(indexPath, null) + ".usearch";

    /// <summary>Writes the sidecar, then the tensor file, each atomically (temporary file, then rename).</summary>
    public void Save(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var list = Encoding.UTF8.GetBytes(string.Concat(Files.Select(f => f + "\n")));
        AtomicFile.WriteAllBytes(FileListPath(full), list);
        var metadata = new Dictionary<string, string>
        {
            ["format"] = FormatName,
            ["model"] = Model,
            ["count"] = Count.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["normalized"] = "true",
            ["files_sha256"] = Convert.ToHexStringLower(SHA256.HashData(list)),
        };
        SafeTensorsWriter.Write(full, [SafeTensor.F32(TensorName, _vectors, Count, Dimensions)], metadata);
    }

    /// <summary>Reads an index written by <see cref="Save"/> (or by Python, following docs/embeddings.md).</summary>
    public static EmbeddingIndex Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw new ClipGenException($"index file not found: {path}");
        var listPath = FileListPath(path);
        if (!File.Exists(listPath)) throw new ClipGenException($"{path}: its file list {listPath} is missing");
        using var reader = SafeTensorsReader.Open(path);
        var entry = reader.Entries.FirstOrDefault(e => e.Name == TensorName)
            ?? throw new ClipGenException($"{path}: no '{TensorName}' tensor (found: {string.Join(", ", reader.Entries.Select(e => e.Name))})");
        var shape = entry.Shape;
        if (shape.Length != 2) throw new ClipGenException($"{path}: '{TensorName}' is [{string.Join(",", shape)}], not [N, D]");
        float[] vectors;
        vectors = entry.ReadFloats();
        var bytes = File.ReadAllBytes(listPath);
        if (reader.Metadata.TryGetValue("files_sha256", out var sha) && !string.Equals(sha, Convert.ToHexStringLower(SHA256.HashData(bytes)), StringComparison.OrdinalIgnoreCase))
            throw new ClipGenException($"{path}: {listPath} is not the file list written with it (sha256 differs)");
        var text = Encoding.UTF8.GetString(bytes);
        var files = text.Length == 0 ? [] : text.TrimEnd('\n').Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        if (files.Count != shape[0])
            throw new ClipGenException($"{path}: {shape[0]} embeddings but {files.Count} lines in {listPath}");
        var model = reader.Metadata.TryGetValue("model", out var m) ? m : "";
        return new EmbeddingIndex(model, (int)shape[1], files, vectors);
    }

    /// <summary>The exact index over the rows, made on first use.</summary>
    public ExactVectorIndex Exact => _exact ??= ExactVectorIndex.FromRows(_vectors, Dimensions);

    /// <summary>
    /// The <paramref name="top"/> rows most similar (cosine) to <paramref name="query"/>, best first (ties: lower row
    /// first). Exact: SIMD dot products and a bounded heap, see <see cref="ExactVectorIndex"/>.
    /// </summary>
    public IReadOnlyList<SearchHit> Search(ReadOnlySpan<float> query, int top)
    {
        if (query.Length != Dimensions) throw new ClipGenException($"the query has {query.Length} dimensions but the index {Dimensions}");
        if (top <= 0) throw new ArgumentOutOfRangeException(nameof(top), top, "top must be positive");
        return ToHits(Exact.Search(query, top));
    }

    /// <summary>Search hits of rows found by any <see cref="IVectorIndex"/> over this index's rows.</summary>
    public IReadOnlyList<SearchHit> ToHits(IEnumerable<ScoredRow> rows) =>
        rows.Select(r => new SearchHit(r.Row, Files[r.Row], r.Score)).ToList();
}

/// <summary>Whole-file writes that never leave a partial file behind: a temporary file beside the target, then a rename.</summary>
public static class AtomicFile
{
    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        var full = Path.GetFullPath(path);
        var temp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var fs = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                fs.Write(bytes);
                fs.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            try { if (File.Exists(temp)) File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    public static void WriteAllText(string path, string text) => WriteAllBytes(path, new UTF8Encoding(false).GetBytes(text));
}
