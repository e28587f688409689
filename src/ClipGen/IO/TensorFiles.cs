using static TorchSharp.torch;

namespace ClipGen.IO;

/// <summary>Writes named tensors to a safetensors file atomically (temporary file, then rename).</summary>
public static class TensorFiles
{
    /// <summary>Writes <paramref name="tensors"/> with <see cref="SafeTensorsWriter"/>, optionally with <c>__metadata__</c>.</summary>
    public static void SaveSafetensors(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null) =>
        SafeTensorsTorchWriter.Write(path, tensors, metadata);
}
