using System.Buffers.Binary;
using System.Text.Json;
using TorchSharp;

namespace ClipGen.Tests.Onnx;

/// <summary>A minimal little-endian safetensors reader for the tests (F32, I64).</summary>
public sealed class SafeTensorsFile
{
    public sealed record Entry(string DType, long[] Shape, byte[] Data)
    {
        public float[] Floats() => DType == "F32" ? System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(Data).ToArray() : throw new InvalidDataException($"{DType} is not F32");
        public long[] Longs() => DType == "I64" ? System.Runtime.InteropServices.MemoryMarshal.Cast<byte, long>(Data).ToArray() : throw new InvalidDataException($"{DType} is not I64");

        public torch.Tensor ToTensor() => DType switch
        {
            "F32" => torch.tensor(Floats(), Shape),
            "I64" => torch.tensor(Longs(), Shape),
            _ => throw new NotSupportedException(DType),
        };
    }

    public IReadOnlyDictionary<string, Entry> Entries { get; }

    SafeTensorsFile(Dictionary<string, Entry> entries) => Entries = entries;

    public Entry this[string key] => Entries[key];

    public static SafeTensorsFile Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        long n = BinaryPrimitives.ReadInt64LittleEndian(bytes);
        using var doc = JsonDocument.Parse(bytes.AsMemory(8, (int)n));
        var entries = new Dictionary<string, Entry>(StringComparer.Ordinal);
        foreach (var p in doc.RootElement.EnumerateObject())
        {
            if (p.Name == "__metadata__") continue;
            var dtype = p.Value.GetProperty("dtype").GetString()!;
            var shape = p.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            var off = p.Value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            entries[p.Name] = new Entry(dtype, shape, bytes.AsSpan((int)(8 + n + off[0]), (int)(off[1] - off[0])).ToArray());
        }
        return new SafeTensorsFile(entries);
    }
}
