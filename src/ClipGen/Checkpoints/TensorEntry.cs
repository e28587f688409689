using TorchSharp;
using static TorchSharp.torch;

namespace ClipGen.Checkpoints;

/// <summary>
/// One named tensor in a checkpoint. Nothing is read until <see cref="ToTensor"/> or <see cref="CopyInto"/> is called,
/// and then the bytes go straight from the file (or the zip entry) into the tensor's memory.
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

    /// <summary>Reads the tensor into a new CPU tensor, optionally converted to <paramref name="convertTo"/>.</summary>
    public Tensor ToTensor(ScalarType? convertTo = null)
    {
        CheckSize();
        var stored = DType.ToScalarType();
        var t = empty(_shape, stored);
        try
        {
            FillContiguous(t);
            if (convertTo is { } target && target != stored)
            {
                var converted = t.to_type(target);
                t.Dispose();
                return converted;
            }
            return t;
        }
        catch
        {
            t.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Copies the tensor into <paramref name="target"/>, which must have the same shape; its dtype may differ (converted as <c>copy_</c> does).
    /// A contiguous CPU target of the stored dtype is filled directly from the file with no intermediate copy.
    /// </summary>
    public void CopyInto(Tensor target)
    {
        ArgumentNullException.ThrowIfNull(target);
        var targetShape = target.shape;
        if (!targetShape.AsSpan().SequenceEqual(_shape))
            throw new ClipGenException($"{File}: tensor '{Name}' has shape {FormatShape(_shape)} but the target has shape {FormatShape(targetShape)}");

        if (target.device_type == DeviceType.CPU && target.dtype == DType.ToScalarType() && target.is_contiguous())
        {
            FillContiguous(target);
            return;
        }
        using var temporary = ToTensor();
        using (no_grad())
            target.copy_(temporary);
    }

    /// <inheritdoc/>
    public override string ToString() => $"{Name} {DType}{FormatShape(_shape)}";

    /// <summary>Writes the tensor's bytes, in the stored dtype and row-major order, into <paramref name="destination"/> (exactly <see cref="ByteLength"/> bytes).</summary>
    private protected abstract void ReadContiguous(Span<byte> destination);

    void FillContiguous(Tensor t)
    {
        if (ByteLength == 0) return;
        CheckSize();
        var span = t.bytes;
        if (span.Length != ByteLength)
            throw new InvalidOperationException($"tensor '{Name}': expected {ByteLength} bytes in the target, found {span.Length}");
        ReadContiguous(span);
    }

    void CheckSize()
    {
        if (ByteLength > int.MaxValue)
            throw new ClipGenException($"{File}: tensor '{Name}' is {ByteLength} bytes; tensors over 2 GiB are not supported");
    }

    internal static string FormatShape(IEnumerable<long> shape) => "[" + string.Join(",", shape) + "]";
}
