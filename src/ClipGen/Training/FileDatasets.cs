using System.Text;
using ClipGen.Datasets;
using ClipGen.Imaging;
using SkiaSharp;

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
        var baseDir = Path.GetDirectoryName(Path.GetFullPath(csvPath))!;
        var items = new List<(string, string)>();
        var problems = new List<DatasetProblem>();
        using var reader = new StreamReader(csvPath, Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        int line = 0;
        var header = Csv.ReadRecord(reader, ref line);
        if (header is null) throw new ClipGenException($"{csvPath}: the CSV file is empty (it needs a header with '{imageColumn}' and '{captionColumn}')");
        int ic = header.IndexOf(imageColumn), cc = header.IndexOf(captionColumn);
        if (ic < 0 || cc < 0)
            throw new ClipGenException($"{csvPath}:1: the header has no '{(ic < 0 ? imageColumn : captionColumn)}' column (columns: {string.Join(", ", header)}); choose columns with --image-column / --caption-column");
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
            var caption = File.ReadAllText(txt).Trim();
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
        // Random resized crop: a random area fraction and aspect ratio (3/4..4/3), then the spec's preprocessing.
        using var bmp = SKBitmap.Decode(path) ?? throw new ClipGenException($"{path}: cannot decode the image");
        int w = bmp.Width, h = bmp.Height;
        int cw = w, ch = h, x0 = 0, y0 = 0;
        for (int attempt = 0; attempt < 10; attempt++)
        {
            double area = w * h * (CropScale.Min + augment.NextDouble() * (CropScale.Max - CropScale.Min));
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
                var c = bmp.GetPixel(x0 + x, y0 + y);
                int o = (y * cw + x) * 3;
                rgb[o] = c.Red; rgb[o + 1] = c.Green; rgb[o + 2] = c.Blue;
            }
        _pre.Preprocess(rgb, cw, ch, destination);
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
