using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Json;
using ClipGen.Checkpoints;

namespace ClipGen.IO;

/// <summary>One tensor to write: a name, a safetensors dtype (<c>F32</c>, <c>I64</c>, …), a shape and its little-endian bytes.</summary>
public sealed record SafeTensor(string Name, string Dtype, long[] Shape, ReadOnlyMemory<byte> Data)
{
    /// <summary>A float32 tensor (the values are copied; .NET floats are little-endian on every supported platform).</summary>
    public static SafeTensor F32(string name, float[] data, params long[] shape) =>
        new(name, "F32", shape, MemoryMarshal.AsBytes(data.AsSpan()).ToArray());

    /// <summary>An int64 tensor.</summary>
    public static SafeTensor I64(string name, long[] data, params long[] shape) =>
        new(name, "I64", shape, MemoryMarshal.AsBytes(data.AsSpan()).ToArray());
}

/// <summary>
/// Writes the safetensors format: an 8-byte little-endian header length, a JSON header
/// (<c>{"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}</c>) padded with spaces to a
/// multiple of 8 bytes, then the tensors' bytes in the order given. Files are written to a temporary file and renamed.
/// Raw byte tensors (<see cref="SafeTensor"/>) are written in the order given; the ClipGen package streams torch tensors
/// (<c>SafeTensorsTorchWriter</c>) in name order, produced one at a time, so a whole checkpoint is never held in memory.
/// </summary>
public static class SafeTensorsWriter
{
    static readonly Dictionary<string, int> DtypeSizes = new(StringComparer.Ordinal)
    {
        ["BOOL"] = 1, ["U8"] = 1, ["I8"] = 1, ["F8_E4M3"] = 1, ["F8_E5M2"] = 1,
        ["I16"] = 2, ["U16"] = 2, ["F16"] = 2, ["BF16"] = 2,
        ["I32"] = 4, ["U32"] = 4, ["F32"] = 4,
        ["I64"] = 8, ["U64"] = 8, ["F64"] = 8,
    };

    /// <summary>Writes <paramref name="tensors"/> to <paramref name="path"/> atomically.</summary>
    public static void Write(string path, IReadOnlyList<SafeTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        var temp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var fs = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                Write(fs, tensors, metadata);
                fs.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(temp);
            throw new ClipGenException($"{path}: cannot write the safetensors file ({e.Message})", e);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    /// <summary>Writes the safetensors bytes to <paramref name="stream"/>.</summary>
    public static void Write(Stream stream, IReadOnlyList<SafeTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var header = BuildHeader(tensors, metadata);
        Span<byte> len = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
        stream.Write(len);
        stream.Write(header);
        foreach (var t in tensors) stream.Write(t.Data.Span);
    }

    /// <summary>The header JSON, space-padded so that the data starts at a multiple of 8 bytes.</summary>
    public static byte[] BuildHeader(IReadOnlyList<SafeTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var t in tensors)
        {
            if (string.IsNullOrEmpty(t.Name) || t.Name == "__metadata__") throw new ArgumentException($"invalid tensor name '{t.Name}'");
            if (!names.Add(t.Name)) throw new ArgumentException($"duplicate tensor name '{t.Name}'");
            if (!DtypeSizes.TryGetValue(t.Dtype, out int elem)) throw new ArgumentException($"tensor '{t.Name}': unknown dtype '{t.Dtype}'");
            long count = 1;
            foreach (var d in t.Shape)
            {
                if (d < 0) throw new ArgumentException($"tensor '{t.Name}': negative dimension {d}");
                count *= d;
            }
            if (count * elem != t.Data.Length)
                throw new ArgumentException($"tensor '{t.Name}': shape [{string.Join(", ", t.Shape)}] of {t.Dtype} needs {count * elem} bytes, got {t.Data.Length}");
        }
        return HeaderJson(tensors.Select(t => (t.Name, t.Dtype, t.Shape, (long)t.Data.Length)), metadata);
    }

    /// <summary>
    /// The one header writer: <c>__metadata__</c> first (keys in ordinal order), then each tensor at the next offset,
    /// space-padded so that the data starts at a multiple of 8 bytes.
    /// </summary>
    internal static byte[] HeaderJson(IEnumerable<(string Name, string Dtype, long[] Shape, long Bytes)> entries, IReadOnlyDictionary<string, string>? metadata)
    {
        using var ms = new MemoryStream();
        using (var json = new Utf8JsonWriter(ms))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal)) json.WriteString(k, v);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, dtype, shape, bytes) in entries)
            {
                json.WriteStartObject(name);
                json.WriteString("dtype", dtype);
                json.WriteStartArray("shape");
                foreach (var d in shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + bytes);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += bytes;
            }
            json.WriteEndObject();
        }
        int pad = (int)((8 - ms.Length % 8) % 8);
        for (int i = 0; i < pad; i++) ms.WriteByte((byte)' ');
        return ms.ToArray();
    }

    static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
