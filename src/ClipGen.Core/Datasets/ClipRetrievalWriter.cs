using System.Globalization;
using System.Text.Json;
using Parquet;
using Parquet.Schema;

namespace ClipGen.Datasets;

/// <summary>One row of clip-retrieval metadata: <c>image_path</c> (a file path, or the sample key of a WebDataset), the caption and the sample's JSON.</summary>
public sealed record ClipRetrievalRow(string ImagePath, string? Caption, string? Json);

/// <summary>
/// Writes one partition of rom1504/clip-retrieval's <c>clip-inference</c> output, which autofaiss, clip-retrieval's back
/// end and vector-database loaders read: <c>img_emb/img_emb_{i}.npy</c>, <c>text_emb/text_emb_{i}.npy</c> (when
/// there are captions) and <c>metadata/metadata_{i}.parquet</c>. As clip-retrieval: embeddings are float16 by default
/// (its mapper casts with <c>.to(torch.float16)</c>), <c>{i}</c> is zero-padded to <c>int(log10(partitions)) + 1</c>
/// digits, and the metadata columns are <c>image_path</c>, <c>caption</c>, then the sample's JSON fields flattened
/// (nested objects as <c>a.b</c>, like <c>pandas.json_normalize</c>; fields named like those two columns are
/// dropped). Embedding rows are streamed to temporary files; <see cref="Commit"/> writes the metadata and renames all
/// three files into place, metadata last.
/// </summary>
public sealed class ClipRetrievalWriter : IDisposable
{
    readonly string _folder;
    readonly string _id;
    readonly int _dims;
    readonly NpyDType _dtype;
    readonly long _rows;
    readonly FileStream _image;
    readonly FileStream? _text;
    readonly string _imageTemp;
    readonly string? _textTemp;
    long _imageValues, _textValues;
    bool _committed;

    /// <param name="folder">The output folder (img_emb/, text_emb/ and metadata/ are made inside).</param>
    /// <param name="partition">This partition's number, 0-based.</param>
    /// <param name="partitions">How many partitions the whole output has (sets the zero padding).</param>
    /// <param name="rows">The number of rows this partition will have.</param>
    public ClipRetrievalWriter(string folder, int partition, int partitions, long rows, int dimensions, bool withText, NpyDType dtype = NpyDType.Float16)
    {
        ArgumentNullException.ThrowIfNull(folder);
        if (partitions < 1 || partition < 0 || partition >= partitions) throw new ArgumentOutOfRangeException(nameof(partition), $"partition {partition} of {partitions}");
        _folder = folder; _id = PartitionId(partition, partitions); _dims = dimensions; _dtype = dtype; _rows = rows;
        Directory.CreateDirectory(Path.Combine(folder, "img_emb"));
        Directory.CreateDirectory(Path.Combine(folder, "metadata"));
        _imageTemp = Temp(ImagePath(folder, _id));
        _image = Create(_imageTemp);
        _image.Write(NpyFile.Header(dtype, rows, dimensions));
        if (withText)
        {
            Directory.CreateDirectory(Path.Combine(folder, "text_emb"));
            _textTemp = Temp(TextPath(folder, _id));
            _text = Create(_textTemp);
            _text.Write(NpyFile.Header(dtype, rows, dimensions));
        }
    }

    /// <summary>clip-retrieval's partition number: zero-padded to <c>int(log10(partitions)) + 1</c> digits.</summary>
    public static string PartitionId(int partition, int partitions) =>
        partition.ToString(CultureInfo.InvariantCulture).PadLeft((int)Math.Floor(Math.Log10(partitions)) + 1, '0');

    public static string ImagePath(string folder, string id) => Path.Combine(folder, "img_emb", $"img_emb_{id}.npy");
    public static string TextPath(string folder, string id) => Path.Combine(folder, "text_emb", $"text_emb_{id}.npy");
    public static string MetadataPath(string folder, string id) => Path.Combine(folder, "metadata", $"metadata_{id}.parquet");

    /// <summary>The files this partition writes (text only when it has captions).</summary>
    public IReadOnlyList<string> Files => _text is null
        ? [ImagePath(_folder, _id), MetadataPath(_folder, _id)]
        : [ImagePath(_folder, _id), TextPath(_folder, _id), MetadataPath(_folder, _id)];

    public void AppendImageRows(ReadOnlySpan<float> values)
    {
        _imageValues += values.Length;
        NpyFile.WriteValues(_image, values, _dtype);
    }

    public void AppendTextRows(ReadOnlySpan<float> values)
    {
        if (_text is null) throw new InvalidOperationException("this partition was created without text embeddings");
        _textValues += values.Length;
        NpyFile.WriteValues(_text, values, _dtype);
    }

    /// <summary>Writes the metadata (one row per embedding row) and moves the three files into place.</summary>
    public void Commit(IReadOnlyList<ClipRetrievalRow> metadata)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        long expected = _rows * _dims;
        if (_imageValues != expected || (_text is not null && _textValues != expected) || metadata.Count != _rows)
            throw new InvalidOperationException($"partition {_id}: {_imageValues}/{_textValues} values and {metadata.Count} metadata rows for {_rows} rows of {_dims}");
        _image.Flush(flushToDisk: true);
        _image.Dispose();
        _text?.Flush(flushToDisk: true);
        _text?.Dispose();
        var metaPath = MetadataPath(_folder, _id);
        var metaTemp = Temp(metaPath);
        try
        {
            using (var fs = Create(metaTemp))
            {
                WriteMetadata(fs, metadata, _text is not null).GetAwaiter().GetResult();
                fs.Flush(flushToDisk: true);
            }
            File.Move(_imageTemp, ImagePath(_folder, _id), overwrite: true);
            if (_textTemp is not null) File.Move(_textTemp, TextPath(_folder, _id), overwrite: true);
            File.Move(metaTemp, metaPath, overwrite: true);
            _committed = true;
        }
        finally
        {
            TryDelete(metaTemp);
        }
    }

    /// <summary>Writes clip-retrieval's metadata table to <paramref name="output"/>.</summary>
    public static async Task WriteMetadata(Stream output, IReadOnlyList<ClipRetrievalRow> rows, bool withCaption)
    {
        var imageField = new DataField<string>("image_path", nullable: true);
        var captionField = new DataField<string>("caption", nullable: true);
        var extra = JsonColumns(rows);
        var fields = new List<Field> { imageField };
        if (withCaption) fields.Add(captionField);
        fields.AddRange(extra.Select(c => c.Field));
        await using var writer = await ParquetWriter.CreateAsync(new ParquetSchema(fields), output).ConfigureAwait(false);
        using var group = writer.CreateRowGroup();
        await group.WriteAsync(imageField, rows.Select(r => r.ImagePath).ToArray()).ConfigureAwait(false);
        if (withCaption) await group.WriteAsync(captionField, rows.Select(r => r.Caption).ToArray()!).ConfigureAwait(false);
        foreach (var c in extra) await c.Write(group).ConfigureAwait(false);
    }

    sealed record JsonColumn(DataField Field, Func<ParquetRowGroupWriter, Task> Write);

    /// <summary>The JSON fields of the rows as typed columns (integers, floats, booleans, else text), in first-seen order.</summary>
    static List<JsonColumn> JsonColumns(IReadOnlyList<ClipRetrievalRow> rows)
    {
        var values = new Dictionary<string, JsonElement?[]>(StringComparer.Ordinal);
        var order = new List<string>();
        for (int r = 0; r < rows.Count; r++)
        {
            if (rows[r].Json is not { } json) continue;
            JsonElement root;
            try { root = JsonDocument.Parse(json).RootElement; }
            catch (JsonException) { continue; }
            if (root.ValueKind != JsonValueKind.Object) continue;
            foreach (var (name, value) in Flatten(root, ""))
            {
                if (name is "image_path" or "caption" or "metadata") continue;
                if (!values.TryGetValue(name, out var column)) { values[name] = column = new JsonElement?[rows.Count]; order.Add(name); }
                column[r] = value;
            }
        }
        var result = new List<JsonColumn>();
        foreach (var name in order)
        {
            var column = values[name];
            var present = column.Where(v => v is { ValueKind: not JsonValueKind.Null }).Select(v => v!.Value).ToList();
            if (present.Count > 0 && present.All(v => v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out _)))
            {
                var f = new DataField<long?>(name, nullable: true);
                var data = column.Select(v => v is { ValueKind: JsonValueKind.Number } e ? e.GetInt64() : (long?)null).ToArray();
                result.Add(new JsonColumn(f, g => g.WriteAsync<long>(f, data.AsMemory())));
            }
            else if (present.Count > 0 && present.All(v => v.ValueKind == JsonValueKind.Number))
            {
                var f = new DataField<double?>(name, nullable: true);
                var data = column.Select(v => v is { ValueKind: JsonValueKind.Number } e ? e.GetDouble() : (double?)null).ToArray();
                result.Add(new JsonColumn(f, g => g.WriteAsync<double>(f, data.AsMemory())));
            }
            else if (present.Count > 0 && present.All(v => v.ValueKind is JsonValueKind.True or JsonValueKind.False))
            {
                var f = new DataField<bool?>(name, nullable: true);
                var data = column.Select(v => v is { ValueKind: JsonValueKind.True or JsonValueKind.False } e ? e.GetBoolean() : (bool?)null).ToArray();
                result.Add(new JsonColumn(f, g => g.WriteAsync<bool>(f, data.AsMemory())));
            }
            else
            {
                var f = new DataField<string>(name, nullable: true);
                var data = column.Select(v => v is not { } e || e.ValueKind == JsonValueKind.Null ? null : e.ValueKind == JsonValueKind.String ? e.GetString() : e.GetRawText()).ToArray();
                result.Add(new JsonColumn(f, g => g.WriteAsync(f, data!)));
            }
        }
        return result;
    }

    static IEnumerable<(string Name, JsonElement Value)> Flatten(JsonElement obj, string prefix)
    {
        foreach (var p in obj.EnumerateObject())
        {
            var name = prefix + p.Name;
            if (p.Value.ValueKind == JsonValueKind.Object && p.Value.EnumerateObject().Any())
                foreach (var inner in Flatten(p.Value, name + ".")) yield return inner;
            else yield return (name, p.Value);
        }
    }

    static string Temp(string path) =>
        Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, $".{Path.GetFileName(path)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");

    static FileStream Create(string path) => new(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);

    static void TryDelete(string path)
    {
        try { if (File.Exists(path)) File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    public void Dispose()
    {
        _image.Dispose();
        _text?.Dispose();
        if (!_committed)
        {
            TryDelete(_imageTemp);
            if (_textTemp is not null) TryDelete(_textTemp);
        }
    }
}
