using System.Text;
using Parquet;
using Parquet.Schema;

namespace ClipGen.Datasets;

/// <summary>One row of an image list: the image's path (resolved), its caption if the list has one, and where it came from.</summary>
public sealed record ImageListEntry(string Path, string? Caption, int Row);

/// <summary>A row of an image list that was skipped, and why.</summary>
public sealed record ImageListProblem(string File, int Row, string Reason)
{
    public override string ToString() => $"{File}:{Row}: {Reason}";
}

/// <summary>The rows of an image list, in file order, and the rows skipped.</summary>
public sealed record ImageList(string File, IReadOnlyList<ImageListEntry> Entries, IReadOnlyList<ImageListProblem> Problems, bool HasCaptions);

/// <summary>
/// Lists of images with captions, as open_clip's <c>--csv-img-key</c> / <c>--csv-caption-key</c> read them: a CSV
/// (<c>.csv</c>, comma-separated), a TSV (<c>.tsv</c>, tab-separated; open_clip's default separator) or a Parquet file
/// (<c>.parquet</c>), with an image column (default <c>filepath</c>) and a caption column (default <c>title</c>).
/// Relative paths are relative to the list's folder. A missing caption column means no captions unless it was asked
/// for; rows with an empty path are reported and skipped (missing files are found later, when the images are read).
/// </summary>
public static class ImageListReader
{
    public const string DefaultImageColumn = "filepath";
    public const string DefaultCaptionColumn = "title";

    /// <summary>Whether <paramref name="path"/> names a list this reader reads (by extension).</summary>
    public static bool IsList(string path) => Path.GetExtension(path).ToLowerInvariant() is ".csv" or ".tsv" or ".parquet";

    /// <param name="captionRequired">Whether a missing caption column is an error (it was named by the user).</param>
    public static ImageList Read(string path, string imageColumn = DefaultImageColumn, string captionColumn = DefaultCaptionColumn, bool captionRequired = false)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw new ClipGenException($"image list '{path}' does not exist");
        var ext = Path.GetExtension(path).ToLowerInvariant();
        var baseDir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        var rows = ext == ".parquet"
            ? ReadParquet(path, imageColumn, captionColumn, captionRequired)
            : ReadDelimited(path, ext == ".tsv" ? '\t' : ',', imageColumn, captionColumn, captionRequired);
        var entries = new List<ImageListEntry>();
        var problems = new List<ImageListProblem>(rows.Problems);
        foreach (var (row, image, caption) in rows.Rows)
        {
            var p = image?.Trim() ?? "";
            if (p.Length == 0) { problems.Add(new ImageListProblem(path, row, $"empty '{imageColumn}'")); continue; }
            entries.Add(new ImageListEntry(System.IO.Path.IsPathRooted(p) ? p : System.IO.Path.Combine(baseDir, p), rows.HasCaptions ? caption?.Trim() ?? "" : null, row));
        }
        problems.Sort((a, b) => a.Row.CompareTo(b.Row));
        return new ImageList(path, entries, problems, rows.HasCaptions);
    }

    sealed record RawRows(List<(int Row, string? Image, string? Caption)> Rows, List<ImageListProblem> Problems, bool HasCaptions);

    static RawRows ReadDelimited(string path, char separator, string imageColumn, string captionColumn, bool captionRequired)
    {
        using var reader = new StreamReader(path, Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        int line = 0;
        var header = Csv.ReadRecord(reader, ref line, separator)
            ?? throw new ClipGenException($"{path}: the list is empty (it needs a header with a '{imageColumn}' column)");
        int ic = header.IndexOf(imageColumn), cc = header.IndexOf(captionColumn);
        if (ic < 0) throw new ClipGenException($"{path}:1: the header has no '{imageColumn}' column (columns: {string.Join(", ", header)})") { Setting = ClipGenSetting.ListColumns };
        if (cc < 0 && captionRequired) throw new ClipGenException($"{path}:1: the header has no '{captionColumn}' column (columns: {string.Join(", ", header)})") { Setting = ClipGenSetting.ListColumns };
        var rows = new List<(int, string?, string?)>();
        var problems = new List<ImageListProblem>();
        while (true)
        {
            int start = line + 1;
            List<string>? rec;
            try { rec = Csv.ReadRecord(reader, ref line, separator); }
            catch (FormatException e) { problems.Add(new ImageListProblem(path, start, e.Message)); continue; }
            if (rec is null) break;
            if (rec.Count == 1 && rec[0].Length == 0) continue;
            if (rec.Count != header.Count) { problems.Add(new ImageListProblem(path, start, $"expected {header.Count} fields, found {rec.Count}")); continue; }
            rows.Add((start, rec[ic], cc >= 0 ? rec[cc] : null));
        }
        return new RawRows(rows, problems, cc >= 0);
    }

    static RawRows ReadParquet(string path, string imageColumn, string captionColumn, bool captionRequired)
    {
        try
        {
            return ReadParquetAsync(path, imageColumn, captionColumn, captionRequired).GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is not ClipGenException && e is IOException or InvalidDataException or NotSupportedException or InvalidOperationException or ArgumentException or FormatException)
        {
            throw new ClipGenException($"{path}: cannot read the Parquet file ({e.Message})", e);
        }
    }

    static async Task<RawRows> ReadParquetAsync(string path, string imageColumn, string captionColumn, bool captionRequired)
    {
        await using var stream = File.OpenRead(path);
        await using var reader = await ParquetReader.CreateAsync(stream).ConfigureAwait(false);
        var fields = reader.Schema.GetDataFields();
        DataField? Find(string name) => fields.FirstOrDefault(f => f.Name == name && f.Path.Length == 1);
        var image = Find(imageColumn) ?? throw new ClipGenException($"{path}: no '{imageColumn}' column (columns: {string.Join(", ", fields.Select(f => f.Path.ToString()))})") { Setting = ClipGenSetting.ListColumns };
        var caption = Find(captionColumn);
        if (caption is null && captionRequired) throw new ClipGenException($"{path}: no '{captionColumn}' column (columns: {string.Join(", ", fields.Select(f => f.Path.ToString()))})") { Setting = ClipGenSetting.ListColumns };
        foreach (var f in caption is null ? [image] : new[] { image, caption })
            if (!(f.ClrType == typeof(string) || f.ClrType == typeof(ReadOnlyMemory<char>)) || f.IsArray)
                throw new ClipGenException($"{path}: column '{f.Name}' holds {f.ClrType.Name}{(f.IsArray ? "[]" : "")}, not text");
        var rows = new List<(int, string?, string?)>();
        int row = 0;
        for (int g = 0; g < reader.RowGroupCount; g++)
        {
            using var group = reader.OpenRowGroupReader(g);
            if (group.RowCount > Array.MaxLength) throw new ClipGenException($"{path}: row group {g} has {group.RowCount} rows");
            var images = new string?[group.RowCount];
            await group.ReadAsync(image, images.AsMemory()).ConfigureAwait(false);
            string?[]? captions = null;
            if (caption is not null)
            {
                captions = new string?[group.RowCount];
                await group.ReadAsync(caption, captions.AsMemory()).ConfigureAwait(false);
            }
            for (int i = 0; i < images.Length; i++) rows.Add((++row, images[i], captions?[i]));
        }
        return new RawRows(rows, [], caption is not null);
    }
}
