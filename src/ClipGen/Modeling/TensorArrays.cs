using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace ClipGen.Modeling;

/// <summary>
/// Tensors from managed arrays, copied into memory that libtorch owns. <c>torch.tensor(array)</c> shares the
/// array (pinned until libtorch frees the storage, through a callback); training and evaluation loops create many
/// such tensors per second, and an owned copy keeps their lifetime entirely inside libtorch.
/// </summary>
public static class TensorArrays
{
    public static Tensor FromArray(float[] data, params long[] shape) => Copy<float>(data, ScalarType.Float32, shape);

    public static Tensor FromArray(long[] data, params long[] shape) => Copy<long>(data, ScalarType.Int64, shape);

    static Tensor Copy<T>(T[] data, ScalarType type, long[] shape) where T : unmanaged
    {
        long count = 1;
        foreach (var d in shape) count *= d;
        if (count != data.Length) throw new ArgumentException($"{data.Length} values do not fill shape [{string.Join(",", shape)}]");
        var t = empty(shape, dtype: type);
        MemoryMarshal.AsBytes(data.AsSpan()).CopyTo(t.bytes);
        return t;
    }
}

/// <summary>Conversions between TorchSharp tensors and ClipGen.Core's <see cref="ArrayTensor{T}"/>.</summary>
public static class ArrayTensors
{
    /// <summary>A float32 tensor with the values and shape (copied into libtorch's memory).</summary>
    public static Tensor ToTensor(this ArrayTensor<float> array)
    {
        ArgumentNullException.ThrowIfNull(array);
        return TensorArrays.FromArray(array.Data, array.Shape);
    }

    /// <summary>An int64 tensor with the values and shape (copied into libtorch's memory).</summary>
    public static Tensor ToTensor(this ArrayTensor<long> array)
    {
        ArgumentNullException.ThrowIfNull(array);
        return TensorArrays.FromArray(array.Data, array.Shape);
    }

    /// <summary>The tensor's values as float32, row-major, with its shape (copied).</summary>
    public static ArrayTensor<float> ToFloatArray(this Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        using var t = tensor.to(ScalarType.Float32, CPU).contiguous();
        return new ArrayTensor<float>(t.data<float>().ToArray(), t.shape);
    }

    /// <summary>The tensor's values as int64, row-major, with its shape (copied).</summary>
    public static ArrayTensor<long> ToLongArray(this Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        using var t = tensor.to(ScalarType.Int64, CPU).contiguous();
        return new ArrayTensor<long>(t.data<long>().ToArray(), t.shape);
    }
}
