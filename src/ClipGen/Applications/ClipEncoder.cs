using ClipGen.Modeling;
using ClipGen.Specs;
using static TorchSharp.torch;

namespace ClipGen.Applications;

/// <summary>
/// The two towers of a loaded CLIP model, as the applications (zero-shot classification, embeddings, search) need
/// them. Everything in <c>ClipGen.Applications</c> goes through this interface, so that the backend (TorchSharp,
/// ONNX Runtime) can be swapped without touching the applications.
/// </summary>
public interface IClipEncoder : IDisposable
{
    /// <summary>The resolved spec of the model (image size, context length, embed dim, tokenizer, preprocessing).</summary>
    ClipSpec Spec { get; }

    /// <summary>The backend's name (<c>torch</c>, <c>onnx</c>).</summary>
    string Backend { get; }

    /// <summary>The learned temperature as stored (<c>logit_scale</c>); logits are <c>exp(LogitScale)·cos</c>.</summary>
    double LogitScale { get; }

    /// <summary>Image features, unnormalised: float32 [N, 3, R, R] on the CPU → float32 [N, embed_dim] on the CPU.</summary>
    Tensor EncodeImage(Tensor pixelValues);

    /// <summary>Text features, unnormalised: int64 [N, L] → float32 [N, embed_dim] on the CPU.</summary>
    Tensor EncodeText(Tensor inputIds);
}

/// <summary>The inference backends of the applications.</summary>
public enum ClipBackend
{
    /// <summary>TorchSharp (libtorch), the model as a <see cref="ClipModule"/>.</summary>
    Torch,
    /// <summary>ONNX Runtime, on graphs exported from the same weights.</summary>
    Onnx,
}

/// <summary>Loads an <see cref="IClipEncoder"/> for a model and a backend.</summary>
public static class ClipEncoders
{
    /// <summary>Parses a backend name (<c>torch</c>, <c>onnx</c>), case-insensitively.</summary>
    public static ClipBackend ParseBackend(string name) => name.Trim().ToLowerInvariant() switch
    {
        "torch" or "torchsharp" => ClipBackend.Torch,
        "onnx" or "onnxruntime" or "ort" => ClipBackend.Onnx,
        _ => throw new ClipGenException($"unknown backend '{name}'; use torch or onnx"),
    };

    /// <summary>The backend's name as the CLI spells it.</summary>
    public static string Name(ClipBackend backend) => backend == ClipBackend.Onnx ? "onnx" : "torch";

    /// <summary>
    /// Loads the model <paramref name="nameOrPath"/> (name, alias or spec.yaml) with the weights at
    /// <paramref name="weightsPath"/> (strict: missing, unexpected or mis-shaped keys are a <see cref="ClipGenException"/>).
    /// </summary>
    public static IClipEncoder Load(string nameOrPath, string weightsPath, ClipBackend backend = ClipBackend.Torch)
    {
        ArgumentNullException.ThrowIfNull(nameOrPath);
        ArgumentNullException.ThrowIfNull(weightsPath);
        // Resolve the spec first, so that an unknown model is reported before the weights are looked at.
        ClipModelFactory.ResolveSpec(nameOrPath);
        if (!File.Exists(weightsPath)) throw new ClipGenException($"weights file not found: {weightsPath}");
        var model = ClipModelFactory.Load(nameOrPath, weightsPath);
        if (backend == ClipBackend.Torch) return new TorchClipEncoder(model, ownsModel: true);
        try
        {
            return OnnxClipEncoder.FromModel(model);
        }
        finally
        {
            model.Dispose();
        }
    }
}

/// <summary>The TorchSharp backend: a <see cref="ClipModule"/> in evaluation mode, run without gradients.</summary>
public sealed class TorchClipEncoder : IClipEncoder
{
    readonly ClipModule _model;
    readonly bool _ownsModel;

    /// <summary>Wraps a loaded model; with <paramref name="ownsModel"/> the encoder disposes it.</summary>
    public TorchClipEncoder(ClipModule model, bool ownsModel = false)
    {
        ArgumentNullException.ThrowIfNull(model);
        _model = model;
        _ownsModel = ownsModel;
        _model.eval();
        LogitScale = model.LogitScale.detach().cpu().to(ScalarType.Float64).item<double>();
    }

    /// <summary>The wrapped model.</summary>
    public ClipModule Model => _model;

    public ClipSpec Spec => _model.Spec;
    public string Backend => "torch";
    public double LogitScale { get; }

    public Tensor EncodeImage(Tensor pixelValues)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        return _model.EncodeImage(pixelValues.to(ScalarType.Float32)).cpu().MoveToOuterDisposeScope();
    }

    public Tensor EncodeText(Tensor inputIds)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        return _model.EncodeText(inputIds.to(ScalarType.Int64)).cpu().MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        if (_ownsModel) _model.Dispose();
    }
}
