using ClipGen.Imaging;
using SkiaSharp;
using Xunit;
using Xunit.Abstractions;

namespace ClipGen.Tests.Imaging;

/// <summary>
/// The system libjpeg-turbo path (<see cref="JpegDecoder.Auto"/>) and SkiaSharp's decoder give the same bytes: they are the
/// same library with the same settings, and PIL's reference pixels are checked in <see cref="FixtureParityTests"/>.
/// </summary>
public sealed class JpegDecoderTests(ITestOutputHelper output)
{
    /// <summary>CI installs libturbojpeg0 and sets CLIPGEN_REQUIRE_TURBOJPEG=1, so that the fast path is really exercised there.</summary>
    [Fact]
    public void Libturbojpeg_is_loaded_where_required()
    {
        output.WriteLine($"libturbojpeg available: {TurboJpeg.IsAvailable}");
        if (Environment.GetEnvironmentVariable("CLIPGEN_REQUIRE_TURBOJPEG") == "1")
            Assert.True(TurboJpeg.IsAvailable, "CLIPGEN_REQUIRE_TURBOJPEG=1 but libturbojpeg.so.0 could not be loaded (apt-get install libturbojpeg0)");
        else
            Assert.Equal(TurboJpeg.IsAvailable, TurboJpeg.TryDecode(Encode(8, 8, SKColorType.Rgba8888, 90, SKJpegEncoderDownsample.Downsample420), "x.jpg", long.MaxValue) is { } d && Dispose(d));
    }

    static bool Dispose(DecodedImage d)
    {
        d.Dispose();
        return true;
    }

    public static TheoryData<int, int, string, int, string> Cases() => new()
    {
        { 640, 480, "colour", 90, "420" },
        { 640, 480, "colour", 50, "422" },
        { 333, 217, "colour", 95, "444" },
        { 37, 23, "colour", 75, "420" },
        { 1, 300, "colour", 90, "420" },
        { 301, 1, "colour", 90, "422" },
        { 200, 150, "grey", 90, "444" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Both_decoders_give_the_same_bytes(int width, int height, string kind, int quality, string subsampling)
    {
        var downsample = subsampling switch
        {
            "420" => SKJpegEncoderDownsample.Downsample420,
            "422" => SKJpegEncoderDownsample.Downsample422,
            _ => SKJpegEncoderDownsample.Downsample444,
        };
        var jpeg = Encode(width, height, kind == "grey" ? SKColorType.Gray8 : SKColorType.Rgba8888, quality, downsample);
        // Where libturbojpeg is installed, the fast path must really take these files (not fall back to Skia).
        using (var fast = TurboJpeg.TryDecode(jpeg, "a.jpg", long.MaxValue))
            Assert.Equal(TurboJpeg.IsAvailable, fast is not null);
        using var skia = ImageDecoder.Decode(jpeg, "a.jpg", long.MaxValue, JpegDecoder.Skia);
        using var auto = ImageDecoder.Decode(jpeg, "a.jpg", long.MaxValue, JpegDecoder.Auto);
        Assert.Equal((skia.Width, skia.Height, skia.Mode), (auto.Width, auto.Height, auto.Mode));
        int n = skia.Width * skia.Height * 4;
        Assert.True(skia.Rgba.AsSpan(0, n).SequenceEqual(auto.Rgba.AsSpan(0, n)), "the two JPEG decoders differ");

        // And through the whole preprocessing.
        var a = new ImagePreprocessor(new PreprocessOptions { JpegDecoder = JpegDecoder.Skia }).Preprocess(new MemoryStream(jpeg));
        var b = new ImagePreprocessor(new PreprocessOptions { JpegDecoder = JpegDecoder.Auto }).Preprocess(new MemoryStream(jpeg));
        Assert.Equal(a, b);
    }

    [Fact]
    public void Pixel_limit_applies_to_the_fast_path()
    {
        var jpeg = Encode(64, 64, SKColorType.Rgba8888, 90, SKJpegEncoderDownsample.Downsample420);
        var e = Assert.Throws<ClipGenException>(() => ImageDecoder.Decode(jpeg, "big.jpg", 1000, JpegDecoder.Auto));
        Assert.Contains("big.jpg: the image is 64×64 = 4,096 pixels, above the limit of 1,000", e.Message);
    }

    /// <summary>Noise plus gradients, so that every DCT coefficient and the chroma upsampling matter.</summary>
    static byte[] Encode(int width, int height, SKColorType colorType, int quality, SKJpegEncoderDownsample downsample)
    {
        var rng = new Random(width * 7919 + height);
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, colorType, SKAlphaType.Opaque));
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                bitmap.SetPixel(x, y, new SKColor(
                    (byte)Math.Clamp(x * 255 / Math.Max(1, width - 1) + rng.Next(-40, 41), 0, 255),
                    (byte)Math.Clamp(y * 255 / Math.Max(1, height - 1) + rng.Next(-40, 41), 0, 255),
                    (byte)rng.Next(256)));
        using var pixmap = bitmap.PeekPixels();
        using var data = pixmap.Encode(new SKJpegEncoderOptions(quality, downsample, SKJpegEncoderAlphaOption.Ignore));
        return data!.ToArray();
    }
}
