using System.Buffers;
using System.Buffers.Binary;
using SkiaSharp;

namespace ClipGen.Imaging;

/// <summary>
/// The PIL mode an image opens in, as far as resizing and <c>convert("RGB")</c> care: it decides the resampling path
/// (Pillow resizes RGBA/LA premultiplied, P and 1 with NEAREST, I with 32-bit arithmetic).
/// </summary>
internal enum PilMode
{
    /// <summary>RGB (and anything resized like it: L, CMYK-as-RGB).</summary>
    Rgb,
    /// <summary>L: one grey channel, replicated into R, G and B (resizes exactly like RGB).</summary>
    L,
    /// <summary>RGBA: resized premultiplied (RGBa), then alpha dropped.</summary>
    Rgba,
    /// <summary>LA: grey with alpha, resized premultiplied (La).</summary>
    LA,
    /// <summary>P or 1: resized with NEAREST whatever filter was asked for.</summary>
    Nearest,
    /// <summary>I (16-bit grey PNG): resized in 32-bit integers, then clipped to 0..255 by <c>convert("RGB")</c>.</summary>
    I,
}

/// <summary>A decoded image: 4 bytes per pixel (RGBA, alpha unpremultiplied), or 32-bit grey for mode I.</summary>
internal sealed class DecodedImage : IDisposable
{
    public required int Width { get; init; }
    public required int Height { get; init; }
    public required PilMode Mode { get; init; }
    /// <summary>Rented; Width·Height·4 bytes are valid. Empty for mode I.</summary>
    public byte[] Rgba { get; set; } = [];
    /// <summary>Mode I only: Width·Height grey values 0..65535.</summary>
    public int[]? Gray32 { get; set; }
    public bool Rented { get; set; }
    /// <summary>Set once <see cref="Rgba"/> holds RGBa (colour premultiplied by alpha), so a second resize does not premultiply again.</summary>
    public bool Premultiplied { get; set; }

    public void Dispose()
    {
        if (Rented) ArrayPool<byte>.Shared.Return(Rgba);
        Rgba = [];
        Rented = false;
    }
}

/// <summary>Decodes PNG, JPEG, WebP, BMP and GIF (first frame) with SkiaSharp into what PIL would hold after <c>Image.open</c>.</summary>
internal static class ImageDecoder
{
    static readonly byte[] PngSignature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>Decodes <paramref name="data"/>; <paramref name="name"/> is used in error messages only.</summary>
    public static DecodedImage Decode(byte[] data, string name, long maxPixels, JpegDecoder jpeg = JpegDecoder.Auto)
    {
        if (data.Length == 0) throw new ClipGenException($"{name}: the file is empty (0 bytes)");

        if (!LooksLikeAnImage(data))
            throw new ClipGenException($"{name}: not a recognised image (expected PNG, JPEG, WebP, BMP or GIF)");

        string? jpegProblem = null;
        if (jpeg == JpegDecoder.Auto && data.AsSpan().StartsWith((ReadOnlySpan<byte>)[0xFF, 0xD8, 0xFF])
            && TurboJpeg.TryDecode(data, name, maxPixels, out jpegProblem) is { } fast)
            return fast;

        // PNG: read the header ourselves first, so that a bomb is refused even when Skia would not get far enough to say.
        PngHeader? png = null;
        if (data.AsSpan().StartsWith(PngSignature))
        {
            png = ReadPngHeader(data, name);
            CheckPixels(png.Value.Width, png.Value.Height, name, maxPixels);
        }

        // The codec takes ownership of the stream (SkiaSharp revokes the managed wrapper's ownership).
        using var skStream = new SKMemoryStream(data);
        using var codec = SKCodec.Create(skStream, out var createResult);
        if (codec is null)
        {
            string reason = createResult switch
            {
                SKCodecResult.IncompleteInput => "the file is truncated (the header is incomplete)",
                SKCodecResult.Unimplemented => "the image format is not supported",
                _ when png is not null => "the PNG header is corrupt",
                _ => "not a recognised image (expected PNG, JPEG, WebP, BMP or GIF)",
            };
            throw new ClipGenException($"{name}: {reason}");
        }
        var format = codec.EncodedFormat;
        if (format is not (SKEncodedImageFormat.Png or SKEncodedImageFormat.Jpeg or SKEncodedImageFormat.Webp or SKEncodedImageFormat.Bmp or SKEncodedImageFormat.Gif))
            throw new ClipGenException($"{name}: {format} images are not supported (expected PNG, JPEG, WebP, BMP or GIF)");

        int width = codec.Info.Width, height = codec.Info.Height;
        if (width <= 0 || height <= 0) throw new ClipGenException($"{name}: the image has no pixels ({width}×{height})");
        CheckPixels(width, height, name, maxPixels);

        PilMode mode = format switch
        {
            SKEncodedImageFormat.Png => png!.Value.Mode,
            SKEncodedImageFormat.Webp => codec.Info.AlphaType == SKAlphaType.Opaque ? PilMode.Rgb : PilMode.Rgba,
            SKEncodedImageFormat.Bmp => BmpMode(data),
            SKEncodedImageFormat.Gif => GifMode(data),
            _ => PilMode.Rgb, // JPEG: L or RGB, both resized alike.
        };
        var decoded = png is { BitDepth: 16 } ? Decode16(data, png.Value, name) : Decode8(codec, width, height, mode, name);
        if (jpegProblem is not null)
        {
            // Skia decoded what libjpeg-turbo warned about (data corrupted inside the scan): an error, not silently wrong pixels.
            decoded.Dispose();
            throw new ClipGenException($"{name}: the JPEG data is corrupt ({jpegProblem.TrimEnd('.')})");
        }
        return decoded;
    }

    /// <summary>The magic numbers of the formats we decode.</summary>
    static bool LooksLikeAnImage(ReadOnlySpan<byte> d) =>
        d.StartsWith(PngSignature)
        || d.StartsWith((ReadOnlySpan<byte>)[0xFF, 0xD8, 0xFF])
        || d.StartsWith("GIF87a"u8) || d.StartsWith("GIF89a"u8)
        || d.StartsWith("BM"u8)
        || (d.Length >= 12 && d.StartsWith("RIFF"u8) && d.Slice(8, 4).SequenceEqual("WEBP"u8));

    internal static void CheckPixels(long width, long height, string name, long maxPixels)
    {
        if (width * height > maxPixels)
            throw new ClipGenException($"{name}: the image is {width}×{height} = {width * height:N0} pixels, above the limit of {maxPixels:N0} (a possible decompression bomb; raise MaxPixels to allow it)");
    }

    static unsafe DecodedImage Decode8(SKCodec codec, int width, int height, PilMode mode, string name)
    {
        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        long bytes = (long)width * height * 4;
        if (bytes > Array.MaxLength) throw new ClipGenException($"{name}: the image is too large to decode ({width}×{height})");
        var buffer = ArrayPool<byte>.Shared.Rent((int)bytes);
        var image = new DecodedImage { Width = width, Height = height, Mode = mode, Rgba = buffer, Rented = true };
        try
        {
            SKCodecResult result;
            fixed (byte* p = buffer)
                result = codec.GetPixels(info, (IntPtr)p, info.RowBytes, new SKCodecOptions(0));
            ThrowIfFailed(result, name);
            return image;
        }
        catch
        {
            image.Dispose();
            throw;
        }
    }

    /// <summary>16-bit PNG: PIL keeps the high byte (rawmodes RGB;16B, RGBA;16B, LA;16B) or, for grey, all 16 bits (mode I).</summary>
    static DecodedImage Decode16(byte[] data, PngHeader png, string name)
    {
        int width = png.Width, height = png.Height;
        var samples = Png16Decoder.Decode(data, name, width, height, png.ColorType);
        var image = new DecodedImage { Width = width, Height = height, Mode = png.Mode };
        long n = (long)width * height;
        if (png.Mode == PilMode.I)
        {
            var gray = new int[n];
            for (long i = 0; i < n; i++) gray[i] = samples[i];
            image.Gray32 = gray;
            return image;
        }
        if (n * 4 > Array.MaxLength) throw new ClipGenException($"{name}: the image is too large to decode ({width}×{height})");
        var rgba = ArrayPool<byte>.Shared.Rent((int)(n * 4));
        for (long i = 0; i < n; i++)
        {
            byte r, g, b, a = 255;
            switch (png.ColorType)
            {
                case 2: r = Hi(samples[3 * i]); g = Hi(samples[3 * i + 1]); b = Hi(samples[3 * i + 2]); break;
                case 4: r = g = b = Hi(samples[2 * i]); a = Hi(samples[2 * i + 1]); break;
                default: r = Hi(samples[4 * i]); g = Hi(samples[4 * i + 1]); b = Hi(samples[4 * i + 2]); a = Hi(samples[4 * i + 3]); break;
            }
            rgba[4 * i] = r; rgba[4 * i + 1] = g; rgba[4 * i + 2] = b; rgba[4 * i + 3] = a;
        }
        image.Rgba = rgba;
        image.Rented = true;
        return image;
    }

    static byte Hi(ushort v) => (byte)(v >> 8);

    static void ThrowIfFailed(SKCodecResult result, string name)
    {
        switch (result)
        {
            case SKCodecResult.Success:
                return;
            case SKCodecResult.IncompleteInput:
                throw new ClipGenException($"{name}: the image file is truncated");
            case SKCodecResult.ErrorInInput:
                throw new ClipGenException($"{name}: the image data is corrupt");
            case SKCodecResult.InvalidConversion:
                throw new ClipGenException($"{name}: the image cannot be converted to RGB");
            default:
                throw new ClipGenException($"{name}: the image could not be decoded ({result})");
        }
    }

    internal readonly record struct PngHeader(int Width, int Height, int BitDepth, int ColorType, PilMode Mode);

    /// <summary>Reads IHDR (it must be the first chunk) and maps (bit depth, colour type) to PIL's mode as PngImagePlugin does.</summary>
    static PngHeader ReadPngHeader(byte[] data, string name)
    {
        if (data.Length < 33) throw new ClipGenException($"{name}: the PNG file is truncated (no complete IHDR chunk)");
        var span = data.AsSpan();
        if (!span.Slice(12, 4).SequenceEqual("IHDR"u8)) throw new ClipGenException($"{name}: the PNG header is corrupt (IHDR is not the first chunk)");
        uint w = BinaryPrimitives.ReadUInt32BigEndian(span[16..]);
        uint h = BinaryPrimitives.ReadUInt32BigEndian(span[20..]);
        int depth = span[24], colorType = span[25];
        if (w == 0 || h == 0 || w > int.MaxValue || h > int.MaxValue) throw new ClipGenException($"{name}: the PNG header declares an invalid size {w}×{h}");
        PilMode? mode = (colorType, depth) switch
        {
            (0, 1) => PilMode.Nearest,         // "1"
            (0, 2 or 4 or 8) => PilMode.L,     // "L" (L;2 and L;4 scale to 0..255)
            (0, 16) => PilMode.I,              // "I" from I;16B
            (2, 8 or 16) => PilMode.Rgb,
            (3, 1 or 2 or 4 or 8) => PilMode.Nearest, // "P"
            (4, 8 or 16) => PilMode.LA,
            (6, 8 or 16) => PilMode.Rgba,
            _ => null,
        };
        if (mode is null) throw new ClipGenException($"{name}: the PNG header has an invalid bit depth {depth} for colour type {colorType}");
        return new PngHeader((int)w, (int)h, depth, colorType, mode.Value);
    }

    /// <summary>BmpImagePlugin: palette images are "1" (2 colours, black and white), "L" (identity grey palette) or "P"; 32-bit with an alpha mask is RGBA.</summary>
    internal static PilMode BmpMode(ReadOnlySpan<byte> d)
    {
        if (d.Length < 30) return PilMode.Rgb;
        int headerSize = BinaryPrimitives.ReadInt32LittleEndian(d[14..]);
        int bpp, colors, compression = 0, entry;
        if (headerSize == 12)
        {
            bpp = BinaryPrimitives.ReadUInt16LittleEndian(d[24..]);
            colors = bpp <= 8 ? 1 << bpp : 0;
            entry = 3;
        }
        else
        {
            if (d.Length < 14 + 36) return PilMode.Rgb;
            bpp = BinaryPrimitives.ReadUInt16LittleEndian(d[28..]);
            compression = BinaryPrimitives.ReadInt32LittleEndian(d[30..]);
            colors = BinaryPrimitives.ReadInt32LittleEndian(d[46..]);
            if (colors == 0 && bpp <= 8) colors = 1 << bpp;
            entry = 4;
        }
        if (bpp == 32)
        {
            bool alphaMask = (compression == 3 || compression == 6) && headerSize >= 56 && d.Length >= 14 + 56
                && BinaryPrimitives.ReadUInt32LittleEndian(d[(14 + 52)..]) != 0;
            return alphaMask ? PilMode.Rgba : PilMode.Rgb;
        }
        if (bpp > 8) return PilMode.Rgb;
        int paletteAt = 14 + headerSize + (compression == 3 && headerSize == 40 ? 12 : 0);
        if (colors <= 0 || paletteAt + (long)colors * entry > d.Length) return PilMode.Nearest;
        bool grey = true;
        for (int i = 0; i < (colors == 2 ? 2 : colors) && grey; i++)
        {
            int val = colors == 2 ? (i == 0 ? 0 : 255) : i;
            var rgb = d.Slice(paletteAt + i * entry, 3);
            grey = rgb[0] == val && rgb[1] == val && rgb[2] == val;
        }
        return grey && colors != 2 ? PilMode.L : PilMode.Nearest;
    }

    /// <summary>GifImagePlugin: the first frame is "L" when its palette is absent or the identity grey ramp, else "P".</summary>
    internal static PilMode GifMode(ReadOnlySpan<byte> d)
    {
        if (d.Length < 13) return PilMode.Nearest;
        int flags = d[10];
        int pos = 13;
        bool paletteNeeded = false; // no global palette → L unless the frame brings one
        if ((flags & 0x80) != 0)
        {
            int size = 3 << ((flags & 7) + 1);
            if (pos + size > d.Length) return PilMode.Nearest;
            paletteNeeded = IsPaletteNeeded(d.Slice(pos, size));
            pos += size;
        }
        while (pos < d.Length)
        {
            byte b = d[pos++];
            if (b == 0x21)
            {
                pos++; // label
                while (pos < d.Length && d[pos] != 0) pos += d[pos] + 1;
                pos++;
            }
            else if (b == 0x2C)
            {
                if (pos + 9 > d.Length) break;
                int lflags = d[pos + 8];
                if ((lflags & 0x80) != 0)
                {
                    int size = 3 << ((lflags & 7) + 1);
                    if (pos + 9 + size > d.Length) return PilMode.Nearest;
                    paletteNeeded = IsPaletteNeeded(d.Slice(pos + 9, size));
                }
                break;
            }
            else break;
        }
        return paletteNeeded ? PilMode.Nearest : PilMode.L;
    }

    static bool IsPaletteNeeded(ReadOnlySpan<byte> p)
    {
        for (int i = 0; i + 2 < p.Length; i += 3)
            if (!(i / 3 == p[i] && p[i] == p[i + 1] && p[i + 1] == p[i + 2])) return true;
        return false;
    }
}
