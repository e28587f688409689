using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace ClipGen.Tests.Imaging;

/// <summary>A minimal safetensors reader for the tests (F32 only is decoded; the header is returned as is).</summary>
static class SafeTensorsTestReader
{
    public sealed record Entry(string Dtype, long[] Shape, long Begin, long End);

    public static (Dictionary<string, Entry> Entries, long DataStart, byte[] Bytes) Open(string path)
    {
        var bytes = File.ReadAllBytes(path);
        long n = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        using var doc = JsonDocument.Parse(bytes.AsMemory(8, (int)n));
        var entries = new Dictionary<string, Entry>(StringComparer.Ordinal);
        foreach (var p in doc.RootElement.EnumerateObject())
        {
            if (p.Name == "__metadata__") continue;
            var off = p.Value.GetProperty("data_offsets");
            entries[p.Name] = new Entry(
                p.Value.GetProperty("dtype").GetString()!,
                p.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray(),
                off[0].GetInt64(), off[1].GetInt64());
        }
        return (entries, 8 + n, bytes);
    }

    public static (float[] Data, long[] Shape) ReadF32(string path, string? name = null)
    {
        var (entries, start, bytes) = Open(path);
        var e = name is null ? entries.Values.Single() : entries[name];
        if (e.Dtype != "F32") throw new InvalidDataException($"{path}: {e.Dtype}, expected F32");
        var data = MemoryMarshal.Cast<byte, float>(bytes.AsSpan((int)(start + e.Begin), (int)(e.End - e.Begin))).ToArray();
        return (data, e.Shape);
    }
}
