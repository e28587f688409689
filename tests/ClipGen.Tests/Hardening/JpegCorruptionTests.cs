using ClipGen.Imaging;
using SkiaSharp;
using Xunit;

namespace ClipGen.Tests.Hardening;

/// <summary>Defect 18 of issue 12: a JPEG corrupted inside its scan is an error, as docs/preprocessing.md says.</summary>
public class JpegCorruptionTests
{
    internal static byte[] NoisyJpeg()
    {
        using var bmp = new SKBitmap(96, 80);
        var rng = new Random(5);
        for (int y = 0; y < 80; y++)
            for (int x = 0; x < 96; x++)
                bmp.SetPixel(x, y, new SKColor((byte)rng.Next(256), (byte)(x * 2), (byte)(y * 3)));
        using var data = bmp.Encode(SKEncodedImageFormat.Jpeg, 90);
        return data.ToArray();
    }

    [Fact]
    public void A_jpeg_corrupted_mid_scan_is_an_error()
    {
        var corrupt = HostileCorpus.CorruptMidScan(NoisyJpeg());
        var pre = new ImagePreprocessor();
        if (!TurboJpeg.IsAvailable)
        {
            // Without the system libjpeg-turbo only Skia decodes, and it does not report libjpeg's warnings (docs/preprocessing.md).
            Assert.True(Environment.GetEnvironmentVariable("CLIPGEN_REQUIRE_TURBOJPEG") != "1");
            return;
        }
        var e = Assert.Throws<ClipGenException>(() => pre.Preprocess(new MemoryStream(corrupt), "corrupt.jpg"));
        Assert.StartsWith("corrupt.jpg: the JPEG data is corrupt (", e.Message);
        // The whole file still decodes through the same path.
        Assert.Equal(3 * 224 * 224, pre.Preprocess(new MemoryStream(NoisyJpeg()), "fine.jpg").Length);
    }

    [Fact]
    public void A_truncated_jpeg_still_says_truncated()
    {
        var jpeg = NoisyJpeg();
        var e = Assert.Throws<ClipGenException>(() => new ImagePreprocessor().Preprocess(new MemoryStream(jpeg[..(jpeg.Length / 2)]), "cut.jpg"));
        Assert.Contains("truncated", e.Message);
    }
}
