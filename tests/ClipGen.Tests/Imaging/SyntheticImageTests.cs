using ClipGen.Imaging;
using SkiaSharp;
using Xunit;

namespace ClipGen.Tests.Imaging;

/// <summary>Resize modes, filters, formats and APIs on small images whose right answer is worked out by hand.</summary>
public sealed class SyntheticImageTests : IDisposable
{
    readonly TestImages.TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    static readonly RgbFloat Mean = PreprocessOptions.OpenAIMean, Std = PreprocessOptions.OpenAIStd;

    /// <summary>torchvision's ToTensor + Normalize of one uint8 value, in float32.</summary>
    static float Norm(byte v, int c) => ((float)v / 255f - Mean[c]) / Std[c];

    static byte[] Constant(int w, int h, byte r, byte g, byte b)
    {
        var rgb = new byte[w * h * 3];
        for (int i = 0; i < w * h; i++) { rgb[3 * i] = r; rgb[3 * i + 1] = g; rgb[3 * i + 2] = b; }
        return rgb;
    }

    static float At(float[] chw, int size, int c, int y, int x) => chw[c * size * size + y * size + x];

    [Theory]
    [InlineData(Interpolation.Bicubic)]
    [InlineData(Interpolation.Bilinear)]
    public void Squash_of_a_constant_image_stays_constant(Interpolation interpolation)
    {
        var pre = new ImagePreprocessor(new PreprocessOptions { ResizeMode = ResizeMode.Squash, Interpolation = interpolation });
        var output = pre.Preprocess(Constant(37, 530, 10, 200, 77), 37, 530);
        byte[] rgb = [10, 200, 77];
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < 224 * 224; i++)
                Assert.Equal(Norm(rgb[c], c), output[c * 224 * 224 + i]);
    }

    [Fact]
    public void Longest_pads_with_the_fill_colour_centred()
    {
        // 40×20 → ratio max(20/8, 40/8) = 5 → 8×4, padded top (8-4)//2 = 2 rows, bottom 2 rows.
        var fill = new RgbColor(0, 255, 9);
        var pre = new ImagePreprocessor(new PreprocessOptions { ImageSize = 8, ResizeMode = ResizeMode.Longest, FillColor = fill });
        var output = pre.Preprocess(Constant(40, 20, 200, 100, 50), 40, 20);
        byte[] img = [200, 100, 50], pad = [fill.R, fill.G, fill.B];
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 8; y++)
                for (int x = 0; x < 8; x++)
                    Assert.Equal(Norm(y is >= 2 and < 6 ? img[c] : pad[c], c), At(output, 8, c, y, x));

        // Portrait, odd padding: 7×20 at 8 → ratio 2.5 → round(2.8) = 3 wide, padded left (8-3)//2 = 2, right 3.
        var plan = ResizePlan.For(7, 20, 8, ResizeMode.Longest);
        Assert.Equal(new ResizePlan(3, 8, 0, 0, 3, 8, 2, 0), plan);
    }

    [Fact]
    public void Bilinear_upscale_of_2x2_matches_pillow_by_hand()
    {
        // Pillow BILINEAR 2→4: weights per output column [1], [.75 .25], [.25 .75], [1]; 22-bit fixed point, +half, >>22
        // after each pass. Row 0 (0, 255) → 0, 64 (63.75), 191 (191.25), 255; row 1 (255, 0) → 255, 191, 64, 0.
        // Vertical, output row 1 = .75·row0 + .25·row1: 64, 96 (96.25), 159 (159.25), 191.
        byte[,] expected =
        {
            { 0, 64, 191, 255 },
            { 64, 96, 159, 191 },
            { 191, 159, 96, 64 },
            { 255, 191, 64, 0 },
        };
        byte[] rgb = [0, 0, 0, 255, 255, 255, 255, 255, 255, 0, 0, 0];
        var pre = new ImagePreprocessor(new PreprocessOptions { ImageSize = 4, ResizeMode = ResizeMode.Squash, Interpolation = Interpolation.Bilinear });
        var output = pre.Preprocess(rgb, 2, 2);
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 4; y++)
                for (int x = 0; x < 4; x++)
                    Assert.Equal(Norm(expected[y, x], c), At(output, 4, c, y, x));
    }

    [Theory]
    [InlineData(200, 203, 224, 227, 0, 2)]   // round(1.5) = 2
    [InlineData(224, 229, 224, 229, 0, 2)]   // no resize; round(2.5) = 2 (half to even)
    [InlineData(224, 231, 224, 231, 0, 4)]   // round(3.5) = 4
    [InlineData(600, 400, 336, 224, 56, 0)]
    [InlineData(1, 500, 224, 112000, 0, 55888)]
    public void Shortest_follows_torchvision(int w, int h, int rw, int rh, int left, int top)
    {
        var plan = ResizePlan.For(w, h, 224, ResizeMode.Shortest);
        Assert.Equal((rw, rh, left, top, 224, 224), (plan.ResizedW, plan.ResizedH, plan.WinLeft, plan.WinTop, plan.WinW, plan.WinH));
    }

    [Fact]
    public void Simd_and_scalar_paths_agree()
    {
        var rng = new Random(1234);
        foreach (var (w, h, ow, oh) in new[] { (640, 480, 298, 224), (17, 9, 224, 100), (300, 301, 31, 640), (5, 700, 3, 224), (1000, 37, 301, 11), (41, 2000, 9, 333) })
        {
            var src = new byte[w * h * 4];
            rng.NextBytes(src);
            foreach (var interp in new[] { Interpolation.Bicubic, Interpolation.Bilinear })
            {
                int left = ow / 5, top = oh / 7, ww = ow - left - 1, wh = oh - top;
                var a = new byte[ww * wh * 4];
                var b = new byte[ww * wh * 4];
                var c = new byte[ww * wh * 4];
                PilResample.Resample8(src, w, h, ow, oh, left, top, ww, wh, interp, a, simd: true);               // AVX2 where supported
                PilResample.Resample8(src, w, h, ow, oh, left, top, ww, wh, interp, b, simd: false);              // scalar
                PilResample.Resample8(src, w, h, ow, oh, left, top, ww, wh, interp, c, simd: true, avx2: false);  // SSE4.1
                Assert.Equal(b, a);
                Assert.Equal(b, c);
            }
        }
    }

    [Fact]
    public void Sixteen_bit_png_keeps_the_high_byte_and_grey16_clips_like_mode_I()
    {
        var pre = new ImagePreprocessor(new PreprocessOptions { ImageSize = 2, ResizeMode = ResizeMode.Squash });
        // RGB 16-bit: 0x12FF → 0x12 (PIL rawmode RGB;16B takes the high byte, no rounding).
        var rgb16 = _dir.File("rgb16.png", TestImages.Png(2, 2, 16, 2, _ => [0x12, 0xFF, 0x80, 0x80, 0xFF, 0x01, 0x00, 0xFF, 0x01, 0x00, 0xAB, 0xCD]));
        var o = pre.Preprocess(rgb16);
        Assert.Equal(Norm(0x12, 0), At(o, 2, 0, 0, 0));
        Assert.Equal(Norm(0x80, 1), At(o, 2, 1, 0, 0));
        Assert.Equal(Norm(0xFF, 2), At(o, 2, 2, 0, 0));
        Assert.Equal(Norm(0x00, 0), At(o, 2, 0, 1, 1));
        Assert.Equal(Norm(0x01, 1), At(o, 2, 1, 1, 1));
        Assert.Equal(Norm(0xAB, 2), At(o, 2, 2, 1, 1));
        // Grey 16-bit opens as mode I; convert("RGB") clips: 100 → 100, 300 → 255, 65535 → 255.
        var g16 = _dir.File("g16.png", TestImages.Png(2, 2, 16, 0, y => y == 0 ? [0, 100, 1, 44] : [0xFF, 0xFF, 0, 0]));
        o = pre.Preprocess(g16);
        Assert.Equal(Norm(100, 0), At(o, 2, 0, 0, 0));
        Assert.Equal(Norm(255, 1), At(o, 2, 1, 0, 1));
        Assert.Equal(Norm(255, 2), At(o, 2, 2, 1, 0));
        Assert.Equal(Norm(0, 0), At(o, 2, 0, 1, 1));
    }

    [Fact]
    public void Bmp_webp_and_png_give_the_same_pixels()
    {
        int w = 50, h = 40;
        var rgb = new byte[w * h * 3];
        new Random(7).NextBytes(rgb);
        var pre = new ImagePreprocessor();
        var expected = pre.Preprocess(rgb, w, h);

        var bmp = _dir.File("a.bmp", TestImages.Bmp24(w, h, rgb));
        Assert.Equal(expected, pre.Preprocess(bmp));

        var png = _dir.File("a.png", TestImages.Png(w, h, 8, 2, y => rgb[(y * w * 3)..((y + 1) * w * 3)]));
        Assert.Equal(expected, pre.Preprocess(png));

        using var bitmap = new SKBitmap(new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Opaque));
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int i = (y * w + x) * 3;
                bitmap.SetPixel(x, y, new SKColor(rgb[i], rgb[i + 1], rgb[i + 2]));
            }
        using var webp = bitmap.Encode(SKEncodedImageFormat.Webp, 100); // quality 100 = lossless in Skia
        var webpPath = _dir.File("a.webp", webp.ToArray());
        Assert.Equal(expected, pre.Preprocess(webpPath));
    }

    [Fact]
    public void Batch_span_and_tensor_agree_with_single_images()
    {
        var dir = Path.Combine(Fixtures.Root, "preprocess", "images");
        string[] files = [Path.Combine(dir, "coffee.png"), Path.Combine(dir, "synth_q90_420.jpg"), Path.Combine(dir, "bilevel.png")];
        var pre = new ImagePreprocessor();
        var batch = pre.PreprocessBatch(files);
        Assert.Equal(3 * pre.ValuesPerImage, batch.Length);
        for (int i = 0; i < files.Length; i++)
            Assert.Equal(pre.Preprocess(files[i]), batch.AsSpan(i * pre.ValuesPerImage, pre.ValuesPerImage).ToArray());

        using var t = pre.PreprocessToTensor(files);
        Assert.Equal(new long[] { 3, 3, 224, 224 }, t.shape);
        Assert.Equal(TorchSharp.torch.float32, t.dtype);
        Assert.Equal(batch, t.data<float>().ToArray());

        using var fs = File.OpenRead(files[1]);
        Assert.Equal(batch.AsSpan(pre.ValuesPerImage, pre.ValuesPerImage).ToArray(), pre.Preprocess(fs));
    }

    [Fact]
    public void Cli_writes_pixel_values_safetensors()
    {
        var image = Path.Combine(Fixtures.Root, "preprocess", "images", "horse.png");
        var output = Path.Combine(_dir.Path, "out", "..", "px.safetensors");
        var (code, stdout, stderr) = HostileImageTests.RunCli("preprocess", "--image", image, "--output", output, "--image-size", "64", "--interpolation", "bilinear", "--resize-mode", "longest");
        Assert.True(code == 0, stderr);
        Assert.Contains("[1, 3, 64, 64]", stdout);
        var (entries, dataStart, _) = SafeTensorsTestReader.Open(output);
        Assert.Equal(0, dataStart % 8);
        Assert.Equal(new long[] { 1, 3, 64, 64 }, entries["pixel_values"].Shape);
        var (data, _) = SafeTensorsTestReader.ReadF32(output, "pixel_values");
        var pre = new ImagePreprocessor(new PreprocessOptions { ImageSize = 64, Interpolation = Interpolation.Bilinear, ResizeMode = ResizeMode.Longest });
        Assert.Equal(pre.Preprocess(image), data);
        Assert.Empty(Directory.GetFiles(_dir.Path, "*.tmp"));
    }
}

/// <summary>16-bit PNGs written by Skia's encoder (which uses every row filter) read back exactly.</summary>
public sealed class Png16Tests
{
    [Theory]
    [InlineData(SKAlphaType.Unpremul)]
    [InlineData(SKAlphaType.Opaque)]
    public void Filtered_16_bit_png_round_trips(SKAlphaType alpha)
    {
        int w = 37, h = 23;
        var info = new SKImageInfo(w, h, SKColorType.Rgba16161616, alpha);
        using var bitmap = new SKBitmap(info);
        var px = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(bitmap.GetPixelSpan());
        var rng = new Random(3);
        for (int i = 0; i < px.Length; i++) px[i] = (ushort)(i % 4 == 3 && alpha == SKAlphaType.Opaque ? 65535 : rng.Next(65536));
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        var bytes = data.ToArray();
        Assert.Equal(16, bytes[24]);
        int colorType = bytes[25];
        var samples = Png16Decoder.Decode(bytes, "t.png", w, h, colorType);
        int channels = colorType == 6 ? 4 : 3;
        for (int i = 0; i < w * h; i++)
            for (int c = 0; c < channels; c++)
                Assert.Equal(px[4 * i + c], samples[channels * i + c]);
    }
}
