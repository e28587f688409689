using static TorchSharp.torch;

namespace ClipGen.Checkpoints;

/// <summary>A set of named tensors read from a checkpoint; disposing it frees them.</summary>
public sealed class StateDict(Dictionary<string, Tensor> tensors, string source) : IDisposable
{
    public IReadOnlyDictionary<string, Tensor> Tensors => tensors;
    public string Source => source;
    public void Dispose()
    {
        foreach (var t in tensors.Values) t.Dispose();
    }
}

/// <summary>Reads a checkpoint file into named CPU tensors (OpenAI key names).</summary>
public static class CheckpointLoader
{
    public static StateDict ReadStateDict(string path)
    {
        if (!File.Exists(path)) throw new ClipGenException($"weights file '{path}' does not exist");
        try
        {
            var dict = TorchSharp.PyBridge.Safetensors.LoadStateDict(path);
            return new StateDict(dict.ToDictionary(kv => kv.Key, kv => kv.Value), path);
        }
        catch (Exception e) when (e is not ClipGenException)
        {
            throw new ClipGenException($"cannot read weights '{path}' as safetensors: {e.Message}", e);
        }
    }
}
