using System.Buffers.Binary;
using System.IO.Compression;

namespace ClipGen.Imaging;

/// <summary>
/// Decodes 16-bit PNGs to their raw samples. Skia cannot hand out 16-bit samples (it only converts to 8-bit
/// with rounding or to half floats), while PIL keeps the high byte (RGB;16B, RGBA;16B, LA;16B) or, for grey,
/// all 16 bits as mode I; so both need the exact samples. Handles all filters and Adam7 interlacing.
/// </summary>
internal static class Png16Decoder
{
    /// <summary>Samples per pixel, row-major, big-endian values turned into ushorts.</summary>
    public static ushort[] Decode(byte[] data, string name, int width, int height, int colorType)
    {
        int channels = colorType switch { 0 => 1, 2 => 3, 4 => 2, 6 => 4, _ => throw new ClipGenException($"{name}: unsupported 16-bit PNG colour type {colorType}") };
        int interlace = data[28];
        using var idat = new MemoryStream();
        int pos = 8;
        bool sawEnd = false;
        while (pos + 8 <= data.Length)
        {
            int len = BinaryPrimitives.ReadInt32BigEndian(data.AsSpan(pos));
            var type = data.AsSpan(pos + 4, 4);
            if (len < 0 || pos + 12L + len > data.Length) break;
            if (type.SequenceEqual("IDAT"u8)) idat.Write(data, pos + 8, len);
            if (type.SequenceEqual("IEND"u8)) { sawEnd = true; break; }
            pos += 12 + len;
        }
        if (idat.Length == 0) throw new ClipGenException($"{name}: the image file is truncated (no image data)");

        int bpp = channels * 2;
        var samples = new ushort[(long)width * height * channels];
        idat.Position = 0;
        try
        {
            using var z = new ZLibStream(idat, CompressionMode.Decompress);
            if (interlace == 0)
            {
                ReadPass(z, name, samples, width, channels, bpp, width, height, 0, 0, 1, 1);
            }
            else
            {
                // Adam7: (x0, y0, dx, dy) per pass.
                ReadOnlySpan<int> p = [0, 0, 8, 8, 4, 0, 8, 8, 0, 4, 4, 8, 2, 0, 4, 4, 0, 2, 2, 4, 1, 0, 2, 2, 0, 1, 1, 2];
                for (int i = 0; i < 7; i++)
                {
                    int x0 = p[4 * i], y0 = p[4 * i + 1], dx = p[4 * i + 2], dy = p[4 * i + 3];
                    int pw = (width - x0 + dx - 1) / dx, ph = (height - y0 + dy - 1) / dy;
                    if (pw <= 0 || ph <= 0) continue;
                    ReadPass(z, name, samples, width, channels, bpp, pw, ph, x0, y0, dx, dy);
                }
            }
        }
        catch (InvalidDataException e)
        {
            throw new ClipGenException($"{name}: the PNG image data is corrupt ({e.Message})", e);
        }
        _ = sawEnd; // PIL does not require IEND once the pixels are complete.
        return samples;
    }

    static void ReadPass(Stream z, string name, ushort[] samples, int width, int channels, int bpp,
        int pw, int ph, int x0, int y0, int dx, int dy)
    {
        int rowBytes = pw * bpp;
        var prev = new byte[rowBytes];
        var cur = new byte[rowBytes];
        for (int y = 0; y < ph; y++)
        {
            int filter = z.ReadByte();
            if (filter < 0 || z.ReadAtLeast(cur, rowBytes, throwOnEndOfStream: false) < rowBytes)
                throw new ClipGenException($"{name}: the image file is truncated");
            Unfilter(filter, cur, prev, bpp, name);
            int oy = y0 + y * dy;
            for (int x = 0; x < pw; x++)
            {
                long o = ((long)oy * width + x0 + x * dx) * channels;
                for (int c = 0; c < channels; c++)
                    samples[o + c] = BinaryPrimitives.ReadUInt16BigEndian(cur.AsSpan(x * bpp + 2 * c));
            }
            (prev, cur) = (cur, prev);
        }
    }

    static void Unfilter(int filter, byte[] cur, byte[] prev, int bpp, string name)
    {
        int n = cur.Length;
        switch (filter)
        {
            case 0: break;
            case 1: for (int i = bpp; i < n; i++) cur[i] += cur[i - bpp]; break;
            case 2: for (int i = 0; i < n; i++) cur[i] += prev[i]; break;
            case 3:
                for (int i = 0; i < n; i++) cur[i] += (byte)(((i >= bpp ? cur[i - bpp] : 0) + prev[i]) >> 1);
                break;
            case 4:
                for (int i = 0; i < n; i++)
                {
                    int a = i >= bpp ? cur[i - bpp] : 0, b = prev[i], c = i >= bpp ? prev[i - bpp] : 0;
                    int pa = Math.Abs(b - c), pb = Math.Abs(a - c), pc = Math.Abs(a + b - 2 * c);
                    cur[i] += (byte)(pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
                }
                break;
            default:
                throw new ClipGenException($"{name}: the PNG image data is corrupt (filter type {filter})");
        }
    }
}
