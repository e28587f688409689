using System.Runtime.InteropServices;

namespace ClipGen.Checkpoints;

/// <summary>
/// One named tensor in a checkpoint. Nothing is read until <see cref="ReadFloats"/> or <see cref="ReadInto"/> (or, in the
/// ClipGen package, <c>ToTensor</c> or <c>CopyInto</c>) is called, and then the bytes go straight from the file (or the zip
/// entry) into the destination memory.
/// An entry is valid only while its <see cref="ICheckpointSource"/> is open.
/// </summary>
public abstract class TensorEntry
{
    readonly long[] _shape;

    private protected TensorEntry(string file, string name, TensorDType dtype, long[] shape)
    {
        File = file;
        Name = name;
        DType = dtype;
        _shape = shape;
        long count = 1;
        foreach (var d in shape) count = checked(count * d);
        ElementCount = count;
        ByteLength = checked(count * dtype.Size());
    }

    /// <summary>The key, e.g. <c>visual.conv1.weight</c>, exactly as stored (after the reader's unwrapping of <c>state_dict</c> and <c>module.</c>).</summary>
    public string Name { get; }

    /// <summary>The element type as stored in the file.</summary>
    public TensorDType DType { get; }

    /// <summary>The shape (a fresh copy on every call; a scalar has an empty shape).</summary>
    public long[] Shape => (long[])_shape.Clone();

    /// <summary>The number of elements (1 for a scalar).</summary>
    public long ElementCount { get; }

    /// <summary>The number of bytes in the stored dtype.</summary>
    public long ByteLength { get; }

    /// <summary>The file this entry comes from (used in error messages).</summary>
    public string File { get; }

    /// <summary>Reads the stored bytes (row-major, <see cref="DType"/>) into <paramref name="destination"/>, exactly <see cref="ByteLength"/> bytes.</summary>
    public void ReadInto(Span<byte> destination)
    {
        if (ByteLength == 0) return;
        CheckSize();
        if (destination.Length != ByteLength)
            throw new InvalidOperationException($"tensor '{Name}': expected {ByteLength} bytes in the target, found {destination.Length}");
        ReadContiguous(destination);
    }

    /// <summary>The values as float32, row-major (float16, bfloat16 and float64 are converted; integer tensors are refused).</summary>
    public float[] ReadFloats()
    {
        CheckSize();
        var result = new float[ElementCount];
        switch (DType)
        {
            case TensorDType.F32:
                ReadInto(MemoryMarshal.AsBytes(result.AsSpan()));
                break;
            case TensorDType.F16:
            {
                var half = new Half[ElementCount];
                ReadInto(MemoryMarshal.AsBytes(half.AsSpan()));
                for (int i = 0; i < half.Length; i++) result[i] = (float)half[i];
                break;
            }
            case TensorDType.BF16:
            {
                var raw = new ushort[ElementCount];
                ReadInto(MemoryMarshal.AsBytes(raw.AsSpan()));
                for (int i = 0; i < raw.Length; i++) result[i] = BitConverter.Int32BitsToSingle(raw[i] << 16);
                break;
            }
            case TensorDType.F64:
            {
                var wide = new double[ElementCount];
                ReadInto(MemoryMarshal.AsBytes(wide.AsSpan()));
                for (int i = 0; i < wide.Length; i++) result[i] = (float)wide[i];
                break;
            }
            default:
                throw new ClipGenException($"{File}: tensor '{Name}' is {DType}, not a floating-point tensor");
        }
        return result;
    }

    /// <inheritdoc/>
    public override string ToString() => $"{Name} {DType}{FormatShape(_shape)}";

    /// <summary>Writes the tensor's bytes, in the stored dtype and row-major order, into <paramref name="destination"/> (exactly <see cref="ByteLength"/> bytes).</summary>
    private protected abstract void ReadContiguous(Span<byte> destination);

    internal void CheckSize()
    {
        if (ByteLength > int.MaxValue)
            throw new ClipGenException($"{File}: tensor '{Name}' is {ByteLength} bytes; tensors over 2 GiB are not supported");
    }

    internal static string FormatShape(IEnumerable<long> shape) => "[" + string.Join(",", shape) + "]";
}
