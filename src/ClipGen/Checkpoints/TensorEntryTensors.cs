using TorchSharp;
using static TorchSharp.torch;

namespace ClipGen.Checkpoints;

/// <summary>Checkpoint entries and dtypes as TorchSharp tensors and scalar types.</summary>
public static class TensorEntryTensors
{
    /// <summary>The TorchSharp scalar type with the same layout.</summary>
    public static ScalarType ToScalarType(this TensorDType dtype) => dtype switch
    {
        TensorDType.F32 => ScalarType.Float32,
        TensorDType.F16 => ScalarType.Float16,
        TensorDType.BF16 => ScalarType.BFloat16,
        TensorDType.F64 => ScalarType.Float64,
        TensorDType.I64 => ScalarType.Int64,
        TensorDType.I32 => ScalarType.Int32,
        TensorDType.I16 => ScalarType.Int16,
        TensorDType.I8 => ScalarType.Int8,
        TensorDType.U8 => ScalarType.Byte,
        TensorDType.Bool => ScalarType.Bool,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, null),
    };

    /// <summary>Reads the tensor into a new CPU tensor, optionally converted to <paramref name="convertTo"/>.</summary>
    public static Tensor ToTensor(this TensorEntry entry, ScalarType? convertTo = null)
    {
        ArgumentNullException.ThrowIfNull(entry);
        entry.CheckSize();
        var stored = entry.DType.ToScalarType();
        var t = empty(entry.Shape, stored);
        try
        {
            entry.ReadInto(t.bytes);
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
    public static void CopyInto(this TensorEntry entry, Tensor target)
    {
        ArgumentNullException.ThrowIfNull(entry);
        ArgumentNullException.ThrowIfNull(target);
        var targetShape = target.shape;
        var shape = entry.Shape;
        if (!targetShape.AsSpan().SequenceEqual(shape))
            throw new ClipGenException($"{entry.File}: tensor '{entry.Name}' has shape {TensorEntry.FormatShape(shape)} but the target has shape {TensorEntry.FormatShape(targetShape)}");

        if (target.device_type == DeviceType.CPU && target.dtype == entry.DType.ToScalarType() && target.is_contiguous())
        {
            entry.ReadInto(target.bytes);
            return;
        }
        using var temporary = entry.ToTensor();
        using (no_grad())
            target.copy_(temporary);
    }
}
