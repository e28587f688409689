using System.Text;
using ClipGen.Datasets;
using ClipGen.Imaging;

namespace ClipGen.Training;

/// <summary>A row that was skipped while reading a dataset, with where and why.</summary>
public sealed record DatasetProblem(string File, int Line, string Reason)
{
    public override string ToString() => $"{File}:{Line}: {Reason}";
}

/// <summary>
/// Image–caption pairs from files: a CSV of <c>filepath,caption</c> (column names configurable) or a folder of
/// images with sidecar captions (<c>x.jpg</c> + <c>x.txt</c>). Bad rows are reported in <see cref="Problems"/>
/// with their line numbers and skipped. Training images get a random resized crop.
/// </summary>
public sealed class FileCaptionDataset : ICaptionDataset
{
    static readonly string[] ImageExtensions = [".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif"];
    readonly List<(string Path, string Caption)> _items;
    readonly ImagePreprocessor _pre;

    FileCaptionDataset(List<(string, string)> items, ImagePreprocessor pre, List<DatasetProblem> problems)
    {
        _items = items; _pre = pre; Problems = problems;
    }

    public int Count => _items.Count;
    public int ImageSize => _pre.ImageSize;
    public IReadOnlyList<DatasetProblem> Problems { get; }
    public string ImagePath(int index) => _items[index].Path;
    public string Caption(int index) => _items[index].Caption;

    /// <summary>Minimum and maximum area fraction of the random resized crop.</summary>
    public (double Min, double Max) CropScale { get; init; } = (0.6, 1.0);

    /// <summary>Reads a CSV file. Paths are relative to the CSV's folder unless absolute.</summary>
    public static FileCaptionDataset FromCsv(string csvPath, ImagePreprocessor preprocessor, string imageColumn = "filepath", string captionColumn = "caption")
    {
        if (!File.Exists(csvPath)) throw new ClipGenException($"CSV file '{csvPath}' does not exist");
        IO.InputFiles.RequireRegularFile(csvPath, "a CSV file"); // a FIFO would block, a device never end
        var baseDir = Path.GetDirectoryName(Path.GetFullPath(csvPath))!;
        var items = new List<(string, string)>();
        var problems = new List<DatasetProblem>();
        using var reader = new StreamReader(csvPath, Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        int line = 0;
        var header = Csv.ReadRecord(reader, ref line);
        if (header is null) throw new ClipGenException($"{csvPath}: the CSV file is empty (it needs a header with '{imageColumn}' and '{captionColumn}')");
        int ic = header.IndexOf(imageColumn), cc = header.IndexOf(captionColumn);
        if (ic < 0 || cc < 0)
            throw new ClipGenException($"{csvPath}:1: the header has no '{(ic < 0 ? imageColumn : captionColumn)}' column (columns: {string.Join(", ", header)}); choose the image and caption columns") { Setting = ClipGenSetting.ListColumns };
        while (true)
        {
            int startLine = line + 1;
            List<string>? rec;
            try { rec = Csv.ReadRecord(reader, ref line); }
            catch (FormatException e) { problems.Add(new DatasetProblem(csvPath, startLine, e.Message)); continue; }
            if (rec is null) break;
            if (rec.Count == 1 && rec[0].Length == 0) continue; // blank line
            if (rec.Count != header.Count) { problems.Add(new DatasetProblem(csvPath, startLine, $"expected {header.Count} fields, found {rec.Count}")); continue; }
            var path = rec[ic].Trim();
            var caption = rec[cc].Trim();
            if (path.Length == 0) { problems.Add(new DatasetProblem(csvPath, startLine, "empty image path")); continue; }
            if (caption.Length == 0) { problems.Add(new DatasetProblem(csvPath, startLine, "empty caption")); continue; }
            var full = Path.IsPathRooted(path) ? path : Path.Combine(baseDir, path);
            if (!File.Exists(full)) { problems.Add(new DatasetProblem(csvPath, startLine, $"image '{path}' does not exist")); continue; }
            items.Add((full, caption));
        }
        return new FileCaptionDataset(items, preprocessor, problems);
    }

    /// <summary>Reads a folder of images, each with a caption in a sidecar <c>.txt</c> of the same name.</summary>
    public static FileCaptionDataset FromFolder(string folder, ImagePreprocessor preprocessor)
    {
        if (!Directory.Exists(folder)) throw new ClipGenException($"folder '{folder}' does not exist");
        var items = new List<(string, string)>();
        var problems = new List<DatasetProblem>();
        foreach (var file in Directory.EnumerateFiles(folder).Where(f => ImageExtensions.Contains(Path.GetExtension(f).ToLowerInvariant())).Order(StringComparer.Ordinal))
        {
            var txt = Path.ChangeExtension(file, ".txt");
            if (!File.Exists(txt)) { problems.Add(new DatasetProblem(file, 0, "no sidecar caption (.txt)")); continue; }
            var caption = Encoding.UTF8.GetString(IO.InputFiles.ReadAllBytes(txt, 1 << 20, "a caption file")).Trim();
            if (caption.Length == 0) { problems.Add(new DatasetProblem(txt, 1, "empty caption")); continue; }
            items.Add((file, caption));
        }
        return new FileCaptionDataset(items, preprocessor, problems);
    }

    public void LoadImage(int index, Span<float> destination, Random? augment)
    {
        var path = _items[index].Path;
        if (augment is null)
        {
            _pre.Preprocess(path, destination);
            return;
        }
        // Decoded as inference decodes (regular files only, the file size and pixel limits checked before any pixel memory).
        using var image = _pre.Decode(path);
        RandomResizedCrop(image, augment, CropScale, _pre, destination);
    }

    /// <summary>Random resized crop: a random area fraction and aspect ratio (3/4..4/3), then the spec's preprocessing.</summary>
    internal static void RandomResizedCrop(DecodedImage image, Random augment, (double Min, double Max) cropScale, ImagePreprocessor pre, Span<float> destination)
    {
        int w = image.Width, h = image.Height;
        int cw = w, ch = h, x0 = 0, y0 = 0;
        for (int attempt = 0; attempt < 10; attempt++)
        {
            double area = w * h * (cropScale.Min + augment.NextDouble() * (cropScale.Max - cropScale.Min));
            double logRatio = Math.Log(3.0 / 4) + augment.NextDouble() * (Math.Log(4.0 / 3) - Math.Log(3.0 / 4));
            double ratio = Math.Exp(logRatio);
            int tw = (int)Math.Round(Math.Sqrt(area * ratio)), th = (int)Math.Round(Math.Sqrt(area / ratio));
            if (tw > 0 && th > 0 && tw <= w && th <= h)
            {
                cw = tw; ch = th; x0 = augment.Next(w - tw + 1); y0 = augment.Next(h - th + 1);
                break;
            }
        }
        var rgb = new byte[cw * ch * 3];
        for (int y = 0; y < ch; y++)
            for (int x = 0; x < cw; x++)
            {
                long s = (long)(y0 + y) * w + x0 + x;
                int o = (y * cw + x) * 3;
                if (image.Gray32 is { } gray)
                    rgb[o] = rgb[o + 1] = rgb[o + 2] = (byte)Math.Clamp(gray[s], 0, 255); // mode I: convert("RGB") clips
                else
                {
                    rgb[o] = image.Rgba[4 * s]; rgb[o + 1] = image.Rgba[4 * s + 1]; rgb[o + 2] = image.Rgba[4 * s + 2];
                }
            }
        pre.Preprocess(rgb, cw, ch, destination);
    }
}

/// <summary>A dataset that chooses each epoch's order itself (instead of a uniform permutation of its items).</summary>
public interface IEpochOrder
{
    /// <summary>The item indices of an epoch, <see cref="ICaptionDataset.Count"/> of them; a function of (seed, epoch) only.</summary>
    int[] EpochOrder(int seed, int epoch);
}

/// <summary>
/// Image–caption pairs from WebDataset tar shards (<c>shards/{00000..00009}.tar</c>), read as streams: the shards are
/// scanned once for each sample's key, caption (<c>txt</c>) and where its image (jpg, jpeg, png, webp) lies; images are
/// read from the shard when a batch needs them. Each epoch streams the shards in a seeded shuffled order through a
/// seeded shuffle buffer, as <c>webdataset</c>'s <c>shuffle</c> does, and takes <see cref="ICaptionDataset.Count"/>
/// samples (<c>--train-num-samples</c>; the stream goes on into a new shard order if that is more than one pass).
/// The order is a function of the seed, the epoch and the shard list only, so the trainer's (epoch, step) in
/// <c>trainer_state.json</c> is the stream position: a resume continues at the exact sample.
/// Samples without an image or a caption are reported in <see cref="Problems"/> and left out.
/// </summary>
public sealed class WebDatasetCaptionDataset : ICaptionDataset, IEpochOrder
{
    readonly List<(int Shard, string Key, long Offset, long Length, string Extension, string Caption)> _samples;
    readonly int[] _shardStarts; // first sample index of each shard (plus the total at the end)
    readonly IReadOnlyList<string> _shards;
    readonly ImagePreprocessor _pre;

    WebDatasetCaptionDataset(IReadOnlyList<string> shards, List<(int, string, long, long, string, string)> samples, int[] shardStarts,
        ImagePreprocessor pre, int count, int buffer, List<DatasetProblem> problems)
    {
        _shards = shards; _samples = samples; _shardStarts = shardStarts; _pre = pre; Count = count; ShuffleBuffer = buffer; Problems = problems;
    }

    /// <summary>Samples per epoch.</summary>
    public int Count { get; }
    /// <summary>Usable samples in all the shards.</summary>
    public int SampleCount => _samples.Count;
    public int ImageSize => _pre.ImageSize;
    public int ShuffleBuffer { get; }
    public IReadOnlyList<string> Shards => _shards;
    public IReadOnlyList<DatasetProblem> Problems { get; }
    public (double Min, double Max) CropScale { get; init; } = (0.6, 1.0);
    public string Caption(int index) => _samples[index].Caption;
    /// <summary>The sample's name: <c>shard.tar/key</c>.</summary>
    public string Name(int index) => $"{_shards[_samples[index].Shard]}/{_samples[index].Key}";

    /// <summary>
    /// What the order depends on besides seed and epoch: the shards (path, size), their usable samples, the buffer and
    /// the epoch length. A resume with another fingerprint would not continue at the same sample.
    /// </summary>
    public string Fingerprint()
    {
        var sb = new StringBuilder();
        for (int i = 0; i < _shards.Count; i++)
            sb.Append(Path.GetFullPath(_shards[i])).Append('|').Append(new FileInfo(_shards[i]).Length).Append('|').Append(_shardStarts[i + 1] - _shardStarts[i]).Append('\n');
        sb.Append("buffer ").Append(ShuffleBuffer).Append(" count ").Append(Count);
        return Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString())));
    }

    /// <param name="pattern">Shards, with brace expansion (<c>shards/{00000..00009}.tar</c>).</param>
    /// <param name="numSamples">Samples per epoch (null: every usable sample once).</param>
    /// <param name="shuffleBuffer">Size of the shuffle buffer (webdataset's <c>shuffle(n)</c>).</param>
    public static WebDatasetCaptionDataset Open(string pattern, ImagePreprocessor preprocessor, int? numSamples = null, int shuffleBuffer = 1000)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        if (shuffleBuffer < 1) throw new ClipGenException($"the shuffle buffer must hold at least 1 sample, not {shuffleBuffer}");
        var shards = BraceExpansion.Expand(pattern);
        foreach (var s in shards) if (!File.Exists(s)) throw new ClipGenException($"shard not found: {s}");
        var samples = new List<(int, string, long, long, string, string)>();
        var problems = new List<DatasetProblem>();
        var starts = new int[shards.Count + 1];
        for (int i = 0; i < shards.Count; i++)
        {
            starts[i] = samples.Count;
            // Only captions are loaded; images stay in the shard, found again by offset.
            foreach (var sample in WebDatasetReader.Read(shards[i], p => problems.Add(new DatasetProblem(p.Shard, 0, $"sample '{p.Key}' at byte {p.Offset}: {p.Reason}")), ext => ext == "txt"))
            {
                var image = WebDatasetSample.ImageExtensions.Where(sample.Members.ContainsKey).Select(e => (Ext: e, Place: sample.Members[e])).FirstOrDefault();
                var caption = sample.Caption;
                if (image.Ext is null) { problems.Add(new DatasetProblem(shards[i], 0, $"sample '{sample.Key}' at byte {sample.Offset} has no image")); continue; }
                if (string.IsNullOrEmpty(caption)) { problems.Add(new DatasetProblem(shards[i], 0, $"sample '{sample.Key}' at byte {sample.Offset} has no caption (txt)")); continue; }
                samples.Add((i, sample.Key, image.Place.Offset, image.Place.Length, image.Ext, caption));
            }
        }
        starts[shards.Count] = samples.Count;
        if (samples.Count == 0) throw new ClipGenException($"'{pattern}' holds no usable image–caption samples ({problems.Count} skipped)");
        int count = numSamples ?? samples.Count;
        if (count < 1) throw new ClipGenException($"the number of training samples must be positive, not {count}");
        return new WebDatasetCaptionDataset(shards, samples, starts, preprocessor, count, shuffleBuffer, problems);
    }

    /// <summary>
    /// Shard shuffle, then buffer shuffle: shards in a seeded random order are streamed sample by sample into a buffer;
    /// once it is full, each new sample swaps out a random one, which is emitted. Passes over the shards continue
    /// (with a new shard order) until <see cref="Count"/> samples are out.
    /// </summary>
    public int[] EpochOrder(int seed, int epoch)
    {
        var order = new int[Count];
        int emitted = 0;
        var buffer = new List<int>(Math.Min(ShuffleBuffer, _samples.Count) + 1);
        var rng = new Random(unchecked(seed * 1_000_003 + epoch * 7_919 + 101));
        for (int pass = 0; emitted < Count; pass++)
        {
            var shardOrder = Enumerable.Range(0, _shards.Count).ToArray();
            rng.Shuffle(shardOrder);
            foreach (var shard in shardOrder)
                for (int i = _shardStarts[shard]; i < _shardStarts[shard + 1] && emitted < Count; i++)
                {
                    buffer.Add(i);
                    if (buffer.Count < ShuffleBuffer) continue;
                    int k = rng.Next(buffer.Count);
                    (buffer[k], buffer[^1]) = (buffer[^1], buffer[k]);
                    order[emitted++] = buffer[^1];
                    buffer.RemoveAt(buffer.Count - 1);
                }
            if (pass > 0 && emitted == 0) break;
            // At the end of a pass the buffer drains in random order (webdataset does the same at the end of its stream).
            while (buffer.Count > 0 && emitted < Count)
            {
                int k = rng.Next(buffer.Count);
                order[emitted++] = buffer[k];
                buffer[k] = buffer[^1];
                buffer.RemoveAt(buffer.Count - 1);
            }
            buffer.Clear();
        }
        return order;
    }

    public void LoadImage(int index, Span<float> destination, Random? augment)
    {
        var (shard, key, offset, length, ext, _) = _samples[index];
        var name = $"{_shards[shard]}/{key}.{ext}";
        byte[] bytes;
        try
        {
            using var fs = new FileStream(_shards[shard], FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.RandomAccess);
            if (fs.Length < offset + length) throw new ClipGenException($"{name}: the shard is shorter than when it was indexed");
            fs.Position = offset;
            bytes = new byte[length];
            fs.ReadExactly(bytes);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ClipGenException($"{name}: cannot read the image ({e.Message})", e);
        }
        if (augment is null)
        {
            using var ms = new MemoryStream(bytes, writable: false);
            _pre.Preprocess(ms, name).CopyTo(destination);
            return;
        }
        using var image = ImageDecoder.Decode(bytes, name, _pre.Options.MaxPixels, _pre.Options.JpegDecoder);
        FileCaptionDataset.RandomResizedCrop(image, augment, CropScale, _pre, destination);
    }
}

/// <summary>
/// Keeps a training run on WebDataset shards resumable: <c>webdataset.json</c> in the run's folder records the
/// dataset's <see cref="WebDatasetCaptionDataset.Fingerprint"/>; a resume with other shards or settings is refused,
/// since the saved (epoch, step) would then point at other samples.
/// </summary>
public static class WebDatasetResume
{
    public const string FileName = "webdataset.json";

    public static void Check(string runFolder, WebDatasetCaptionDataset data, bool resume)
    {
        ArgumentNullException.ThrowIfNull(runFolder);
        ArgumentNullException.ThrowIfNull(data);
        var path = Path.Combine(runFolder, FileName);
        var fingerprint = data.Fingerprint();
        if (resume && File.Exists(path))
        {
            string? old = null;
            try { old = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(path))?["fingerprint"]?.GetValue<string>(); }
            catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException) { }
            if (old != fingerprint)
                throw new ClipGenException($"cannot resume: {path} records other shards, shuffle buffer or samples per epoch than these; the saved step would point at other samples");
            return;
        }
        Directory.CreateDirectory(runFolder);
        var json = new System.Text.Json.Nodes.JsonObject
        {
            ["fingerprint"] = fingerprint,
            ["shards"] = new System.Text.Json.Nodes.JsonArray(data.Shards.Select(x => (System.Text.Json.Nodes.JsonNode?)x).ToArray()),
            ["samples_per_epoch"] = data.Count,
            ["shuffle_buffer"] = data.ShuffleBuffer,
        };
        Applications.AtomicFile.WriteAllText(path, json.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
    }
}

/// <summary>A labelled image folder for zero-shot evaluation: one subfolder per class, its name the label.</summary>
public sealed record LabelledFolder(IReadOnlyList<string> Labels, IReadOnlyList<(string Path, int Label)> Images)
{
    public static LabelledFolder Read(string folder)
    {
        if (!Directory.Exists(folder)) throw new ClipGenException($"zero-shot folder '{folder}' does not exist");
        var labels = Directory.GetDirectories(folder).Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal).ToList();
        if (labels.Count < 2) throw new ClipGenException($"zero-shot folder '{folder}' needs at least two class subfolders, found {labels.Count}");
        var images = new List<(string, int)>();
        for (int i = 0; i < labels.Count; i++)
            foreach (var f in Directory.EnumerateFiles(Path.Combine(folder, labels[i])).Order(StringComparer.Ordinal))
                if (new[] { ".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif" }.Contains(Path.GetExtension(f).ToLowerInvariant())) images.Add((f, i));
        if (images.Count == 0) throw new ClipGenException($"zero-shot folder '{folder}' holds no images");
        return new LabelledFolder(labels.Select(l => l.Replace('_', ' ')).ToList(), images);
    }
}
