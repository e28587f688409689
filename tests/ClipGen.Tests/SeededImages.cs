using SkiaSharp;

namespace ClipGen.Tests;

/// <summary>Small seeded test PNGs: a random background with a random rectangle (shared with the server tests).</summary>
public static class SeededImages
{
    /// <summary>Draws one image from <paramref name="rng"/>, 24 to 24 + <paramref name="sizeSpread"/> − 1 pixels a side, and writes it as PNG.</summary>
    public static void WritePng(string path, Random rng, int sizeSpread)
    {
        using var bmp = new SKBitmap(24 + rng.Next(sizeSpread), 24 + rng.Next(sizeSpread));
        using (var canvas = new SKCanvas(bmp))
        {
            canvas.Clear(new SKColor((byte)rng.Next(256), (byte)rng.Next(256), (byte)rng.Next(256)));
            using var paint = new SKPaint { Color = new SKColor((byte)rng.Next(256), (byte)rng.Next(256), (byte)rng.Next(256)) };
            canvas.DrawRect(rng.Next(12), rng.Next(12), 4 + rng.Next(12), 4 + rng.Next(12), paint);
        }
        using var data = bmp.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, data.ToArray());
    }
}
