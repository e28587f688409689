using System.Buffers.Binary;
using ClipGen.Checkpoints;
using static TorchSharp.torch;

namespace ClipGen.IO;

/// <summary>
/// <see cref="SafeTensorsWriter"/> for TorchSharp tensors: each tensor is produced, written and disposed in turn, in name order,
/// so a whole checkpoint is never held in memory.
/// </summary>
public static class SafeTensorsTorchWriter
{
    // Streaming torch tensors (checkpoint conversion, model weights): each tensor is produced, written and disposed in turn.

    /// <summary>One tensor to write: its name, stored dtype and shape, and a function that makes it (called once, when its turn comes).</summary>
    public sealed record Item(string Name, TensorDType DType, long[] Shape, Func<Tensor> Produce);

    /// <summary>Writes <paramref name="tensors"/> (CPU or not, any layout; converted to contiguous CPU) with optional <c>__metadata__</c>.</summary>
    public static void Write(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null) =>
        Write(path, tensors.Select(kv => new Item(kv.Key, FromScalarType(kv.Value.dtype), kv.Value.shape, () => kv.Value.alias())).ToList(), metadata);

    /// <summary>Writes torch tensors produced one at a time, in name order (ordinal), each at the next offset, with optional <c>__metadata__</c> (string values).</summary>
    /// <exception cref="ClipGenException">A name repeats, or a produced tensor does not match its declared dtype and shape.</exception>
    public static void Write(string path, IReadOnlyList<Item> items, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        var ordered = items.OrderBy(i => i.Name, StringComparer.Ordinal).ToList();
        for (int i = 1; i < ordered.Count; i++)
            if (ordered[i].Name == ordered[i - 1].Name) throw new ClipGenException($"{path}: tensor '{ordered[i].Name}' is written twice");
        if (ordered.Any(i => i.Name == "__metadata__")) throw new ClipGenException($"{path}: '__metadata__' is not a tensor name");

        var header = BuildItemHeader(ordered, metadata);
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full);
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
        var tmp = full + ".tmp-" + Environment.ProcessId + "-" + Guid.NewGuid().ToString("N")[..8];
        try
        {
            using (var stream = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                Span<byte> length = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
                stream.Write(length);
                stream.Write(header);
                foreach (var item in ordered) WriteData(stream, item, path);
                stream.Flush(flushToDisk: false);
            }
            File.Move(tmp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    /// <summary>The safetensors dtype of a TorchSharp scalar type.</summary>
    public static TensorDType FromScalarType(ScalarType type) => type switch
    {
        ScalarType.Float32 => TensorDType.F32,
        ScalarType.Float16 => TensorDType.F16,
        ScalarType.BFloat16 => TensorDType.BF16,
        ScalarType.Float64 => TensorDType.F64,
        ScalarType.Int64 => TensorDType.I64,
        ScalarType.Int32 => TensorDType.I32,
        ScalarType.Int16 => TensorDType.I16,
        ScalarType.Int8 => TensorDType.I8,
        ScalarType.Byte => TensorDType.U8,
        ScalarType.Bool => TensorDType.Bool,
        _ => throw new ClipGenException($"tensors of type {type} cannot be written to safetensors"),
    };

    static byte[] BuildItemHeader(List<Item> ordered, IReadOnlyDictionary<string, string>? metadata) =>
        SafeTensorsWriter.HeaderJson(ordered.Select(item =>
        {
            long count = 1;
            foreach (var d in item.Shape) count = checked(count * d);
            return (item.Name, item.DType.ToSafeTensorsName(), item.Shape, checked(count * item.DType.Size()));
        }), metadata);

    static void WriteData(Stream stream, Item item, string path)
    {
        using var produced = item.Produce();
        if (!produced.shape.AsSpan().SequenceEqual(item.Shape) || FromScalarType(produced.dtype) != item.DType)
            throw new ClipGenException($"{path}: tensor '{item.Name}' was declared {item.DType}{TensorEntry.FormatShape(item.Shape)} but is {FromScalarType(produced.dtype)}{TensorEntry.FormatShape(produced.shape)}");
        if (produced.numel() == 0) return;
        if (produced.device_type == TorchSharp.DeviceType.CPU && produced.is_contiguous())
        {
            stream.Write(produced.bytes);
            return;
        }
        using var cpu = produced.cpu();
        using var contiguous = cpu.contiguous();
        stream.Write(contiguous.bytes);
    }
}
