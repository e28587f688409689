using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace ClipGen.Tests.Imaging;

/// <summary>Hand-made image files: PNG chunks with real CRCs (for headers that lie), a 24-bit BMP.</summary>
static class TestImages
{
    static readonly uint[] CrcTable = MakeCrcTable();

    static uint[] MakeCrcTable()
    {
        var t = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[n] = c;
        }
        return t;
    }

    public static uint Crc32(ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFFFFFFu;
        foreach (var b in data) c = CrcTable[(c ^ b) & 0xFF] ^ (c >> 8);
        return c ^ 0xFFFFFFFFu;
    }

    static void Chunk(Stream s, string type, ReadOnlySpan<byte> data)
    {
        Span<byte> len = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(len, (uint)data.Length);
        s.Write(len);
        var body = new byte[4 + data.Length];
        Encoding.ASCII.GetBytes(type, body);
        data.CopyTo(body.AsSpan(4));
        s.Write(body);
        BinaryPrimitives.WriteUInt32BigEndian(len, Crc32(body));
        s.Write(len);
    }

    static byte[] Ihdr(uint width, uint height, byte depth, byte colorType)
    {
        var ihdr = new byte[13];
        BinaryPrimitives.WriteUInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteUInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = depth;
        ihdr[9] = colorType;
        return ihdr;
    }

    static readonly byte[] Signature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>A PNG whose IHDR (valid CRC) declares width×height, with one tiny IDAT and IEND.</summary>
    public static byte[] PngHeaderOnly(uint width, uint height)
    {
        using var ms = new MemoryStream();
        ms.Write(Signature);
        Chunk(ms, "IHDR", Ihdr(width, height, 8, 2));
        Chunk(ms, "IDAT", ZlibCompress(new byte[16]));
        Chunk(ms, "IEND", []);
        return ms.ToArray();
    }

    /// <summary>A real PNG: rows of raw sample bytes (big-endian for 16-bit), filter type 0 on each row.</summary>
    public static byte[] Png(int width, int height, byte depth, byte colorType, Func<int, byte[]> row)
    {
        using var raw = new MemoryStream();
        for (int y = 0; y < height; y++)
        {
            raw.WriteByte(0);
            raw.Write(row(y));
        }
        using var ms = new MemoryStream();
        ms.Write(Signature);
        Chunk(ms, "IHDR", Ihdr((uint)width, (uint)height, depth, colorType));
        Chunk(ms, "IDAT", ZlibCompress(raw.ToArray()));
        Chunk(ms, "IEND", []);
        return ms.ToArray();
    }

    static byte[] ZlibCompress(byte[] data)
    {
        using var ms = new MemoryStream();
        using (var z = new ZLibStream(ms, CompressionLevel.Optimal, leaveOpen: true)) z.Write(data);
        return ms.ToArray();
    }

    /// <summary>A 24-bit bottom-up BMP from top-down RGB bytes.</summary>
    public static byte[] Bmp24(int width, int height, byte[] rgb)
    {
        int rowBytes = (width * 3 + 3) & ~3;
        var b = new byte[54 + rowBytes * height];
        b[0] = (byte)'B'; b[1] = (byte)'M';
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(2), b.Length);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(10), 54);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(14), 40);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(18), width);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(22), height);
        BinaryPrimitives.WriteInt16LittleEndian(b.AsSpan(26), 1);
        BinaryPrimitives.WriteInt16LittleEndian(b.AsSpan(28), 24);
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                int src = (y * width + x) * 3, dst = 54 + (height - 1 - y) * rowBytes + x * 3;
                b[dst] = rgb[src + 2]; b[dst + 1] = rgb[src + 1]; b[dst + 2] = rgb[src];
            }
        return b;
    }

    /// <summary>A temporary directory deleted on dispose.</summary>
    public sealed class TempDir : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("clipgen-img-").FullName;
        public string File(string name, byte[] bytes)
        {
            var p = System.IO.Path.Combine(Path, name);
            System.IO.File.WriteAllBytes(p, bytes);
            return p;
        }
        public void Dispose()
        {
            try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
        }
    }
}
