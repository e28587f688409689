using System.Buffers.Binary;
using System.Globalization;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;

namespace ClipGen.Datasets;

/// <summary>Element types of the 2-D arrays ClipGen writes.</summary>
public enum NpyDType
{
    /// <summary><c>&lt;f2</c>: IEEE half precision (what clip-retrieval writes).</summary>
    Float16,
    /// <summary><c>&lt;f4</c>.</summary>
    Float32,
}

/// <summary>
/// NumPy's <c>.npy</c> format, version 1.0, for C-ordered little-endian 2-D float arrays: the magic <c>\x93NUMPY</c>,
/// version bytes 1 0, a little-endian uint16 header length, then an ASCII Python dict
/// (<c>{'descr': '&lt;f2', 'fortran_order': False, 'shape': (N, D), }</c>) padded with spaces and ended by a newline so
/// that the data starts at a multiple of 64 bytes, then the data. Hand-written because it is 50 lines and no .NET
/// package writes float16 .npy files.
/// </summary>
public static partial class NpyFile
{
    static ReadOnlySpan<byte> Magic => [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>The header of an [rows, columns] array.</summary>
    public static byte[] Header(NpyDType dtype, long rows, int columns)
    {
        var dict = string.Create(CultureInfo.InvariantCulture,
            $"{{'descr': '{Descr(dtype)}', 'fortran_order': False, 'shape': ({rows}, {columns}), }}");
        int unpadded = 6 + 2 + 2 + dict.Length + 1;
        int total = (unpadded + 63) / 64 * 64;
        var header = new byte[total];
        Magic.CopyTo(header);
        header[6] = 1; header[7] = 0;
        BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(8), checked((ushort)(total - 10)));
        Encoding.ASCII.GetBytes(dict).CopyTo(header, 10);
        header.AsSpan(10 + dict.Length, total - 10 - dict.Length - 1).Fill((byte)' ');
        header[^1] = (byte)'\n';
        return header;
    }

    static string Descr(NpyDType dtype) => dtype == NpyDType.Float16 ? "<f2" : "<f4";

    /// <summary>Appends float32 values to <paramref name="output"/> in <paramref name="dtype"/> (float16: round to nearest even).</summary>
    public static void WriteValues(Stream output, ReadOnlySpan<float> values, NpyDType dtype)
    {
        if (dtype == NpyDType.Float32)
        {
            output.Write(MemoryMarshal.AsBytes(values));
            return;
        }
        const int Chunk = 1 << 16;
        var half = new Half[Math.Min(Chunk, Math.Max(1, values.Length))];
        for (int start = 0; start < values.Length; start += Chunk)
        {
            var part = values.Slice(start, Math.Min(Chunk, values.Length - start));
            TensorPrimitives.ConvertToHalf(part, half.AsSpan(0, part.Length));
            output.Write(MemoryMarshal.AsBytes(half.AsSpan(0, part.Length)));
        }
    }

    /// <summary>Writes a whole [rows, columns] array.</summary>
    public static void Write(Stream output, ReadOnlySpan<float> values, int columns, NpyDType dtype)
    {
        if (columns <= 0 || values.Length % columns != 0) throw new ArgumentException($"{values.Length} values do not make rows of {columns}", nameof(values));
        output.Write(Header(dtype, values.Length / columns, columns));
        WriteValues(output, values, dtype);
    }

    /// <summary>A 2-D float array read back: shape and float32 values.</summary>
    public sealed record Array2D(long Rows, int Columns, NpyDType DType, float[] Values);

    /// <summary>Reads a C-ordered little-endian 2-D <c>&lt;f2</c> or <c>&lt;f4</c> array (npy version 1, 2 or 3).</summary>
    public static Array2D Read(string path)
    {
        using var stream = File.OpenRead(path);
        return Read(stream, path);
    }

    public static Array2D Read(Stream stream, string name)
    {
        var (dtype, rows, columns) = ReadHeader(stream, name);
        long count = rows * columns;
        if (count > Array.MaxLength) throw new ClipGenException($"{name}: [{rows}, {columns}] is too large to read at once");
        var values = new float[count];
        if (dtype == NpyDType.Float32) stream.ReadExactly(MemoryMarshal.AsBytes(values.AsSpan()));
        else
        {
            var half = new Half[count];
            stream.ReadExactly(MemoryMarshal.AsBytes(half.AsSpan()));
            TensorPrimitives.ConvertToSingle(half, values);
        }
        return new Array2D(rows, (int)columns, dtype, values);
    }

    /// <summary>Reads and checks the header; the stream is left at the data.</summary>
    public static (NpyDType DType, long Rows, long Columns) ReadHeader(Stream stream, string name)
    {
        Span<byte> pre = stackalloc byte[12];
        try { stream.ReadExactly(pre[..10]); }
        catch (EndOfStreamException) { throw new ClipGenException($"{name}: not a .npy file (too short)"); }
        if (!pre[..6].SequenceEqual(Magic)) throw new ClipGenException($"{name}: not a .npy file (no \\x93NUMPY magic)");
        int major = pre[6];
        int headerLength;
        if (major == 1) headerLength = BinaryPrimitives.ReadUInt16LittleEndian(pre[8..]);
        else if (major is 2 or 3)
        {
            stream.ReadExactly(pre[10..12]);
            headerLength = checked((int)BinaryPrimitives.ReadUInt32LittleEndian(pre[8..]));
        }
        else throw new ClipGenException($"{name}: .npy version {major} is not supported");
        if (headerLength > 1 << 20) throw new ClipGenException($"{name}: .npy header of {headerLength} bytes is too long");
        var text = new byte[headerLength];
        stream.ReadExactly(text);
        var dict = Encoding.UTF8.GetString(text);
        var m = HeaderPattern().Match(dict);
        if (!m.Success) throw new ClipGenException($"{name}: cannot read the .npy header {dict.Trim()}");
        var descr = m.Groups["descr"].Value;
        var dtype = descr switch
        {
            "<f2" => NpyDType.Float16,
            "<f4" => NpyDType.Float32,
            _ => throw new ClipGenException($"{name}: dtype '{descr}' is not float16 or float32 little-endian"),
        };
        if (m.Groups["fortran"].Value != "False") throw new ClipGenException($"{name}: Fortran-ordered arrays are not supported");
        var dims = m.Groups["shape"].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (dims.Length != 2) throw new ClipGenException($"{name}: shape ({m.Groups["shape"].Value}) is not 2-D");
        return (dtype, long.Parse(dims[0], CultureInfo.InvariantCulture), long.Parse(dims[1], CultureInfo.InvariantCulture));
    }

    [GeneratedRegex(@"'descr'\s*:\s*'(?<descr>[^']*)'.*'fortran_order'\s*:\s*(?<fortran>True|False).*'shape'\s*:\s*\((?<shape>[0-9,\s]*)\)", RegexOptions.Singleline)]
    private static partial Regex HeaderPattern();
}
