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
