using ClipGen.Specs;
using ClipGen.Training;
using SkiaSharp;

namespace ClipGen.Demo;

/// <summary>One synthetic scene: a coloured shape of some size at some position on a noisy background.</summary>
public readonly record struct ShapeScene(int Shape, int Color, int Size, int Position, int Seed);

/// <summary>
/// A captioned dataset that ClipGen draws itself with SkiaSharp: shapes × colours × sizes × positions, captions
/// like "a small red circle at the top left". Every item is a pure function of (dataset seed, index), so the data
/// need not be stored and any run is reproducible.
/// </summary>
public sealed class SyntheticShapes : ICaptionDataset
{
    public static readonly string[] Shapes = ["circle", "square", "triangle"];
    public static readonly string[] Colors = ["red", "green", "blue", "yellow"];
    public static readonly string[] Sizes = ["small", "large"];
    public static readonly string[] Positions = ["top left", "top right", "bottom left", "bottom right", "center"];

    static readonly SKColor[] Rgb = [new(220, 40, 40), new(40, 170, 60), new(50, 80, 220), new(230, 210, 40)];

    readonly int _seed;
    readonly float[] _mean;
    readonly float[] _std;

    public SyntheticShapes(int count, int imageSize, int seed, PreprocessSpec preprocess)
    {
        Count = count; ImageSize = imageSize; _seed = seed;
        _mean = preprocess.Mean.Select(x => (float)x).ToArray();
        _std = preprocess.Std.Select(x => (float)x).ToArray();
    }

    public int Count { get; }
    public int ImageSize { get; }

    public ShapeScene Scene(int index)
    {
        var rng = new Random(unchecked(_seed * 1_000_003 + index));
        return new ShapeScene(rng.Next(Shapes.Length), rng.Next(Colors.Length), rng.Next(Sizes.Length), rng.Next(Positions.Length), rng.Next());
    }

    /// <summary>The class label of the zero-shot task: colour and shape (e.g. "red circle").</summary>
    public static string Label(ShapeScene s) => $"{Colors[s.Color]} {Shapes[s.Shape]}";

    /// <summary>All zero-shot labels, in class order (colour-major).</summary>
    public static IReadOnlyList<string> Labels { get; } = Colors.SelectMany(c => Shapes.Select(s => $"{c} {s}")).ToArray();

    public static int LabelIndex(ShapeScene s) => s.Color * Shapes.Length + s.Shape;

    /// <summary>Training captions: several phrasings, always with size and position.</summary>
    public string Caption(int index)
    {
        var s = Scene(index);
        var size = Sizes[s.Size];
        var color = Colors[s.Color];
        var shape = Shapes[s.Shape];
        var pos = Positions[s.Position];
        var at = s.Position == 4 ? "in the center" : $"at the {pos}";
        return (s.Seed % 3) switch
        {
            0 => $"a {size} {color} {shape} {at}",
            1 => $"{at}, a {size} {color} {shape}",
            _ => $"a {color} {shape}, {size}, {at}",
        };
    }

    public void LoadImage(int index, Span<float> destination, Random? augment)
    {
        var s = Scene(index);
        int r = ImageSize;
        var info = new SKImageInfo(r, r, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var bitmap = new SKBitmap(info);
        using (var canvas = new SKCanvas(bitmap))
        {
            var rng = new Random(s.Seed);
            // Background: a light grey level with noise.
            var bg = (byte)rng.Next(170, 235);
            canvas.Clear(new SKColor(bg, bg, bg));
            if (augment is not null)
            {
                // Mild random resized crop: zoom 1.0–1.15 and a small shift, so that "top left" stays top left.
                float zoom = 1f + (float)augment.NextDouble() * 0.15f;
                float dx = ((float)augment.NextDouble() - 0.5f) * r * 0.08f, dy = ((float)augment.NextDouble() - 0.5f) * r * 0.08f;
                canvas.Translate(r / 2f + dx, r / 2f + dy);
                canvas.Scale(zoom);
                canvas.Translate(-r / 2f, -r / 2f);
            }
            float radius = (s.Size == 0 ? 0.13f : 0.22f) * r * (0.9f + (float)rng.NextDouble() * 0.2f);
            float cx = s.Position switch { 0 or 2 => 0.28f, 1 or 3 => 0.72f, _ => 0.5f } * r + (float)(rng.NextDouble() - 0.5) * r * 0.06f;
            float cy = s.Position switch { 0 or 1 => 0.28f, 2 or 3 => 0.72f, _ => 0.5f } * r + (float)(rng.NextDouble() - 0.5) * r * 0.06f;
            var baseColor = Rgb[s.Color];
            int jitter = 25;
            var color = new SKColor(Clamp(baseColor.Red + rng.Next(-jitter, jitter)), Clamp(baseColor.Green + rng.Next(-jitter, jitter)), Clamp(baseColor.Blue + rng.Next(-jitter, jitter)));
            using var paint = new SKPaint { Color = color, IsAntialias = true, Style = SKPaintStyle.Fill };
            switch (s.Shape)
            {
                case 0: canvas.DrawCircle(cx, cy, radius, paint); break;
                case 1: canvas.DrawRect(cx - radius * 0.9f, cy - radius * 0.9f, radius * 1.8f, radius * 1.8f, paint); break;
                default:
                    var svg = string.Create(System.Globalization.CultureInfo.InvariantCulture,
                        $"M{cx},{cy - radius} L{cx + radius * 0.95f},{cy + radius * 0.8f} L{cx - radius * 0.95f},{cy + radius * 0.8f} Z");
                    using (var path = SKPath.ParseSvgPathData(svg)) canvas.DrawPath(path, paint);
                    break;
            }
        }
        var px = bitmap.GetPixelSpan();
        int plane = r * r;
        for (int i = 0; i < plane; i++)
            for (int c = 0; c < 3; c++)
                destination[c * plane + i] = (px[i * 4 + c] / 255f - _mean[c]) / _std[c];
    }

    static byte Clamp(int v) => (byte)Math.Clamp(v, 0, 255);

    /// <summary>Writes item <paramref name="index"/> as a PNG (for looking at the data).</summary>
    public void SavePng(int index, string path)
    {
        var buf = new float[3 * ImageSize * ImageSize];
        LoadImage(index, buf, null);
        using var bmp = new SKBitmap(ImageSize, ImageSize, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        int plane = ImageSize * ImageSize;
        for (int i = 0; i < plane; i++)
        {
            byte C(int c) => Clamp((int)MathF.Round((buf[c * plane + i] * _std[c] + _mean[c]) * 255));
            bmp.SetPixel(i % ImageSize, i / ImageSize, new SKColor(C(0), C(1), C(2)));
        }
        using var data = bmp.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, data.ToArray());
    }
}
