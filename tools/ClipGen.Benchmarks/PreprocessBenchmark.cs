using ClipGen.Imaging;
using SkiaSharp;

namespace ClipGen.Benchmarks;

/// <summary>
/// <c>preprocess [--images N] [--width 640] [--height 480]</c>: images per second for a noisy JPEG (made here with
/// SkiaSharp, quality 90) to [3, 224, 224], on one thread; then the decode / resize+normalise split and a parallel batch.
/// </summary>
public static class PreprocessBenchmark
{
    public static int Run(string[] args)
    {
        int images = ArgInt(args, "--images", 400), width = ArgInt(args, "--width", 640), height = ArgInt(args, "--height", 480);
        foreach (var kind in new[] { "noise", "photo" })
            RunOne(kind, NoisyJpeg(width, height, kind == "photo"), images, width, height);
        return 0;
    }

    static void RunOne(string kind, byte[] jpeg, int images, int width, int height)
    {
        var dir = Directory.CreateTempSubdirectory("clipgen-bench-").FullName;
        var path = Path.Combine(dir, "noise.jpg");
        File.WriteAllBytes(path, jpeg);
        try
        {
            var pre = new ImagePreprocessor();
            var output = new float[pre.ValuesPerImage];
            Console.WriteLine();
            Console.WriteLine($"preprocess: {width}×{height} {(kind == "noise" ? "uniform-noise (worst case)" : "gradient + ±16 noise (photo-like)")} JPEG ({jpeg.Length / 1024} KiB, q90, 4:2:0) → [3, 224, 224], {images} images per run, median of 5 runs");

            Console.WriteLine("  (wall = elapsed time; cpu = this thread's CPU time, which other processes on a busy machine do not inflate)");
            Console.WriteLine($"  JPEG decoder: {(TurboJpeg.IsAvailable ? "system libjpeg-turbo (libturbojpeg.so.0)" : "SkiaSharp (libturbojpeg.so.0 not installed)")}");
            Report("file → tensor, 1 thread", images, () => { for (int i = 0; i < images; i++) pre.Preprocess(path, output); });
            var skiaPre = new ImagePreprocessor(new PreprocessOptions { JpegDecoder = JpegDecoder.Skia });
            Report("file → tensor, Skia decoder", images, () => { for (int i = 0; i < images; i++) skiaPre.Preprocess(path, output); });
            Report("decode only (default)", images, () => { for (int i = 0; i < images; i++) ImageDecoder.Decode(jpeg, "noise.jpg", long.MaxValue).Dispose(); });
            Report("decode only (Skia)", images, () => { for (int i = 0; i < images; i++) ImageDecoder.Decode(jpeg, "noise.jpg", long.MaxValue, JpegDecoder.Skia).Dispose(); });
            using var decoded = ImageDecoder.Decode(jpeg, "noise.jpg", long.MaxValue);
            Report("resize+crop+normalise", images, () => { for (int i = 0; i < images; i++) pre.Run(decoded, output); });

            var paths = Enumerable.Repeat(path, images).ToArray();
            var batch = new float[(long)images * pre.ValuesPerImage];
            double parallel = BenchUtil.MedianSeconds(() => pre.PreprocessBatch(paths, batch));
            Console.WriteLine($"  PreprocessBatch, {Environment.ProcessorCount} threads:     {images / parallel,8:F1} images/s");
            Console.WriteLine($"  SSE4.1 resampler: {PilResample.SimdSupported}; peak RSS {BenchUtil.PeakRssBytes() / (1024 * 1024)} MiB");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    static void Report(string label, int images, Action body)
    {
        double cpu = 0;
        double wall = BenchUtil.MedianSeconds(() =>
        {
            double t0 = BenchUtil.ThreadCpuSeconds();
            body();
            cpu = BenchUtil.ThreadCpuSeconds() - t0; // of the last run
        });
        string cpuText = cpu > 0 ? $"{images / cpu,8:F1} images/cpu-s ({cpu / images * 1e3:F3} ms)" : "n/a";
        Console.WriteLine($"  {label,-28} wall {images / wall,8:F1} images/s ({wall / images * 1e3:F3} ms)   cpu {cpuText}");
    }

    /// <summary>Uniform noise (the entropy decoder's worst case), or smooth gradients with ±16 noise (closer to a photo).</summary>
    static byte[] NoisyJpeg(int width, int height, bool photo)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        var px = bitmap.GetPixelSpan();
        var rng = new Random(42);
        rng.NextBytes(px);
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                int i = (y * width + x) * 4;
                if (photo)
                {
                    int r = 255 * x / width, g = 255 * y / height, b = 128 + (int)(100 * Math.Sin((x + y) / 40.0));
                    px[i] = (byte)Math.Clamp(r + px[i] % 33 - 16, 0, 255);
                    px[i + 1] = (byte)Math.Clamp(g + px[i + 1] % 33 - 16, 0, 255);
                    px[i + 2] = (byte)Math.Clamp(b + px[i + 2] % 33 - 16, 0, 255);
                }
                px[i + 3] = 255;
            }
        using var data = bitmap.Encode(SKEncodedImageFormat.Jpeg, 90);
        return data.ToArray();
    }

    static int ArgInt(string[] args, string name, int fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], System.Globalization.CultureInfo.InvariantCulture) : fallback;
    }
}
