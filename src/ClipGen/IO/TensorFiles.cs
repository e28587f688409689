using static TorchSharp.torch;

namespace ClipGen.IO;

/// <summary>Writes named tensors to a safetensors file atomically (temporary file, then rename).</summary>
public static class TensorFiles
{
    public static void SaveSafetensors(string path, IReadOnlyDictionary<string, Tensor> tensors)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full);
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
        var tmp = full + ".tmp-" + Environment.ProcessId;
        try
        {
            var dict = tensors.ToDictionary(kv => kv.Key, kv => kv.Value.cpu().contiguous());
            TorchSharp.PyBridge.Safetensors.SaveStateDict(tmp, dict);
            File.Move(tmp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }
}
