using System.Buffers.Binary;
using ClipGen.Imaging;
using Xunit;

namespace ClipGen.Tests.Imaging;

/// <summary>The PIL mode a GIF or BMP opens in (it decides NEAREST vs the asked-for filter).</summary>
public sealed class PilModeTests
{
    static byte[] Gif(byte[]? globalPalette, byte[]? localPalette)
    {
        var ms = new MemoryStream();
        ms.Write("GIF89a"u8);
        ms.Write([4, 0, 4, 0]);
        ms.WriteByte(globalPalette is null ? (byte)0 : (byte)(0x80 | (BitLength(globalPalette) - 1)));
        ms.Write([0, 0]);
        if (globalPalette is not null) ms.Write(globalPalette);
        ms.Write([0x21, 0xF9, 4, 0, 0, 0, 0, 0]); // graphic control extension
        ms.Write([0x2C, 0, 0, 0, 0, 4, 0, 4, 0]);
        ms.WriteByte(localPalette is null ? (byte)0 : (byte)(0x80 | (BitLength(localPalette) - 1)));
        if (localPalette is not null) ms.Write(localPalette);
        return ms.ToArray();
    }

    static int BitLength(byte[] palette) => (int)Math.Log2(palette.Length / 3);

    static byte[] Ramp(int n) => Enumerable.Range(0, n).SelectMany(i => new[] { (byte)i, (byte)i, (byte)i }).ToArray();

    [Fact]
    public void Gif_is_L_only_for_an_identity_grey_palette()
    {
        Assert.Equal(PilMode.L, ImageDecoder.GifMode(Gif(null, null)));
        Assert.Equal(PilMode.L, ImageDecoder.GifMode(Gif(Ramp(4), null)));
        Assert.Equal(PilMode.Nearest, ImageDecoder.GifMode(Gif([0, 0, 0, 255, 255, 255], null)));
        Assert.Equal(PilMode.Nearest, ImageDecoder.GifMode(Gif(Ramp(4), [0, 0, 0, 9, 9, 9])));
        Assert.Equal(PilMode.L, ImageDecoder.GifMode(Gif([0, 0, 0, 255, 255, 255], Ramp(2))));
    }

    static byte[] Bmp(int bpp, byte[] palette)
    {
        var b = new byte[54 + palette.Length];
        b[0] = (byte)'B'; b[1] = (byte)'M';
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(14), 40);
        BinaryPrimitives.WriteInt16LittleEndian(b.AsSpan(28), (short)bpp);
        palette.CopyTo(b, 54);
        return b;
    }

    static byte[] Bgrx(params (byte R, byte G, byte B)[] colours) => colours.SelectMany(c => new[] { c.B, c.G, c.R, (byte)0 }).ToArray();

    [Fact]
    public void Bmp_palettes_follow_bmpimageplugin()
    {
        Assert.Equal(PilMode.Rgb, ImageDecoder.BmpMode(Bmp(24, [])));
        Assert.Equal(PilMode.Nearest, ImageDecoder.BmpMode(Bmp(1, Bgrx((0, 0, 0), (255, 255, 255)))));   // "1"
        Assert.Equal(PilMode.Nearest, ImageDecoder.BmpMode(Bmp(1, Bgrx((0, 0, 0), (255, 0, 0)))));       // "P"
        var ramp = Bgrx(Enumerable.Range(0, 256).Select(i => ((byte)i, (byte)i, (byte)i)).ToArray());
        Assert.Equal(PilMode.L, ImageDecoder.BmpMode(Bmp(8, ramp)));                                        // "L"
        ramp[4 * 7] = 99;
        Assert.Equal(PilMode.Nearest, ImageDecoder.BmpMode(Bmp(8, ramp)));                                  // "P"
    }
}

public sealed class ReuseTests
{
    [Fact]
    public void Resizing_a_decoded_rgba_image_twice_gives_the_same_result()
    {
        var path = Path.Combine(Fixtures.Root, "preprocess", "images", "synth_rgba.png");
        var pre = new ImagePreprocessor();
        using var image = ImageDecoder.Decode(File.ReadAllBytes(path), "rgba", long.MaxValue);
        var a = new float[pre.ValuesPerImage];
        var b = new float[pre.ValuesPerImage];
        pre.Run(image, a);
        pre.Run(image, b);
        Assert.Equal(a, b);
        Assert.Equal(pre.Preprocess(path), a);
    }
}
