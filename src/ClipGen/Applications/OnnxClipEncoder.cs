using ClipGen.Modeling;
using ClipGen.Onnx;
using ClipGen.Specs;
using static TorchSharp.torch;

namespace ClipGen.Applications;

/// <summary>
/// The ONNX Runtime backend: the image and text towers exported (in memory) from a loaded model's weights with
/// <see cref="ClipOnnxExport"/>, each run by an <see cref="OnnxClipSession"/>.
/// </summary>
/// <remarks>
/// Seam for the backend abstraction being built on another branch (<c>--backend onnx</c> on every command): when it
/// lands, this class becomes an adapter over it (or is replaced by it) and <see cref="ClipEncoders.Load"/> is the one
/// place to wire it.
/// </remarks>
public sealed class OnnxClipEncoder : IClipEncoder
{
    readonly OnnxClipSession _image;
    readonly OnnxClipSession _text;

    OnnxClipEncoder(ClipSpec spec, double logitScale, OnnxClipSession image, OnnxClipSession text)
    {
        Spec = spec;
        LogitScale = logitScale;
        _image = image;
        _text = text;
    }

    public ClipSpec Spec { get; }
    public string Backend => "onnx";
    public double LogitScale { get; }

    /// <summary>Exports both towers of <paramref name="model"/> (whose weights are read now; the model may be disposed afterwards).</summary>
    public static OnnxClipEncoder FromModel(ClipModule model, OnnxClipSessionOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        var hyper = Hyper(model.Spec);
        var state = model.state_dict();
        Tensor Weight(string key) => state.TryGetValue(key, out var t) ? t.detach().cpu()
            : throw new ClipGenException($"{model.Spec.Name}: the ONNX export needs the weight '{key}', which the model does not have");
        var scale = model.LogitScale.detach().cpu().to(ScalarType.Float64).item<double>();
        var image = new OnnxClipSession(ClipOnnxExport.ImageEncoder(hyper, Weight).ToBytes(), options);
        try
        {
            var text = new OnnxClipSession(ClipOnnxExport.TextEncoder(hyper, Weight).ToBytes(), options);
            return new OnnxClipEncoder(model.Spec, scale, image, text);
        }
        catch
        {
            image.Dispose();
            throw;
        }
    }

    /// <summary>The exporter's hyper-parameters for a spec; features the exporter lacks are a <see cref="ClipGenException"/>.</summary>
    public static ClipHyper Hyper(ClipSpec s)
    {
        ArgumentNullException.ThrowIfNull(s);
        if (s.Text.Pooling != TextPooling.Argmax)
            throw new ClipGenException($"{s.Name}: the ONNX backend pools text at argmax(input_ids), but the spec pools at eos_id; use --backend torch");
        var act = s.Activation == ActivationKind.Gelu ? Activation.Gelu : Activation.QuickGelu;
        VisionHyper vision = s.Vision.Kind == VisionKind.VisionTransformer
            ? new VitHyper(s.Vision.ImageSize, s.Vision.PatchSize, s.Vision.Width, s.Vision.Layers[0], s.VisionHeads, s.EmbedDim, act, s.Vision.MlpRatio)
            : new ResNetHyper(s.Vision.ImageSize, s.Vision.Layers[0], s.Vision.Layers[1], s.Vision.Layers[2], s.Vision.Layers[3], s.Vision.Width, s.VisionHeads, s.EmbedDim);
        var text = new TextHyper(s.Text.ContextLength, s.Text.VocabSize, s.Text.Width, s.Text.Layers, s.Text.Heads, s.EmbedDim, act, s.Text.MlpRatio);
        return new ClipHyper(s.EmbedDim, vision, text);
    }

    public Tensor EncodeImage(Tensor pixelValues)
    {
        var r = Spec.Vision.ImageSize;
        if (pixelValues.dim() != 4 || pixelValues.shape[1] != 3 || pixelValues.shape[2] != r || pixelValues.shape[3] != r)
            throw new ClipGenException($"{Spec.Name} expects pixel_values of shape [N,3,{r},{r}], got [{string.Join(",", pixelValues.shape)}]");
        if (pixelValues.shape[0] == 0) return zeros(0, Spec.EmbedDim);
        return _image.EncodeImage(pixelValues);
    }

    public Tensor EncodeText(Tensor inputIds)
    {
        var c = Spec.Text.ContextLength;
        if (inputIds.dim() != 2 || inputIds.shape[1] > c || inputIds.shape[1] < 1)
            throw new ClipGenException($"{Spec.Name} expects input_ids of shape [N,L] with 1 <= L <= {c}, got [{string.Join(",", inputIds.shape)}]");
        if (inputIds.shape[0] == 0) return zeros(0, Spec.EmbedDim);
        if (inputIds.shape[1] < c)
        {
            // The exported graph has a fixed context length; pad on the right (the pad id never wins the argmax).
            using var padded = nn.functional.pad(inputIds.to(ScalarType.Int64), [0, c - inputIds.shape[1]], value: Spec.Text.PadId);
            return _text.EncodeText(padded);
        }
        return _text.EncodeText(inputIds);
    }

    public void Dispose()
    {
        _image.Dispose();
        _text.Dispose();
    }
}
