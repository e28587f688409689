using ClipGen.Modeling;
using ClipGen.Onnx;
using ClipGen.Specs;
using TorchSharp;
using static TorchSharp.torch;

namespace ClipGen.Backends;

/// <summary>The input checks of <see cref="ClipInputs"/> for TorchSharp tensors.</summary>
public static class ClipTensorInputs
{
    /// <summary>Throws a <see cref="ClipGenException"/> unless <paramref name="pixelValues"/> fits <paramref name="spec"/>'s image tower.</summary>
    public static void CheckPixels(ClipSpec spec, Tensor pixelValues) =>
        ClipInputs.CheckPixels(spec, pixelValues.shape, pixelValues.is_floating_point(), pixelValues.dtype.ToString());

    /// <summary>Throws a <see cref="ClipGenException"/> unless <paramref name="inputIds"/> fits <paramref name="spec"/>'s text tower.</summary>
    public static void CheckTokens(ClipSpec spec, Tensor inputIds)
    {
        ClipInputs.CheckTokenShape(spec, inputIds.shape, inputIds.dtype is ScalarType.Int64 or ScalarType.Int32, inputIds.dtype.ToString());
        if (inputIds.numel() > 0)
            ClipInputs.CheckTokenRange(spec, inputIds.min().ToInt64(), inputIds.max().ToInt64());
    }
}

/// <summary>Creates backends; switching engines is one argument. TorchSharp tensor overloads of <see cref="IClipBackend"/>.</summary>
public static class ClipBackends
{
    /// <summary>
    /// A backend over <paramref name="model"/> (which the caller keeps owning). <see cref="BackendKind.Onnx"/> exports the
    /// model's current weights (image and text graphs) and opens them in ONNX Runtime.
    /// </summary>
    public static IClipBackend Create(ClipModule model, BackendKind kind, ClipBackendOptions? options = null) => kind switch
    {
        BackendKind.Torch => new TorchClipBackend(model, options),
        BackendKind.Onnx => OnnxClipBackend.FromModel(model, options),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };

    /// <summary>The typed form: inputs and outputs carry the model type.</summary>
    public static ClipBackend<TModel> Create<TModel>(TModel model, BackendKind kind, ClipBackendOptions? options = null)
        where TModel : ClipModule, IClipModel<TModel> => new(Create((ClipModule)model, kind, options));

    /// <summary>Parses a backend name (<c>torch</c>, <c>onnx</c>/<c>ort</c>).</summary>
    public static BackendKind Parse(string name) => name.ToLowerInvariant() switch
    {
        "torch" or "torchsharp" => BackendKind.Torch,
        "onnx" or "ort" or "onnxruntime" => BackendKind.Onnx,
        _ => throw new ClipGenException($"unknown backend '{name}'; use torch or onnx"),
    };

    /// <summary>Both features and the logits, as CLIP's forward.</summary>
    public static ClipOutput Forward(this IClipBackend backend, Tensor pixelValues, Tensor inputIds)
    {
        using var img = backend.EncodeImage(pixelValues);
        using var txt = backend.EncodeText(inputIds);
        var (perImage, perText) = backend.Logits(img, txt);
        return new ClipOutput(perImage, perText);
    }

    /// <summary>Image features [N, E] (unnormalised) of a pixel tensor: the TorchSharp forward, or ONNX Runtime reading the tensor's memory.</summary>
    public static Tensor EncodeImage(this IClipBackend backend, Tensor pixelValues)
    {
        ArgumentNullException.ThrowIfNull(backend);
        switch (backend)
        {
            case TorchClipBackend torchBackend:
                return torchBackend.EncodeImage(pixelValues);
            case OnnxClipBackend onnx:
                ClipTensorInputs.CheckPixels(onnx.Spec, pixelValues);
                if (pixelValues.shape[0] == 0) return empty(0, onnx.Spec.EmbedDim, dtype: ScalarType.Float32);
                return onnx.ImageSession.EncodeImage(pixelValues);
            default:
                ClipTensorInputs.CheckPixels(backend.Spec, pixelValues);
                return backend.EncodeImage(pixelValues.ToFloatArray()).ToTensor();
        }
    }

    /// <summary>Text features [N, E] (unnormalised) of an id tensor [N, L].</summary>
    public static Tensor EncodeText(this IClipBackend backend, Tensor inputIds)
    {
        ArgumentNullException.ThrowIfNull(backend);
        switch (backend)
        {
            case TorchClipBackend torchBackend:
                return torchBackend.EncodeText(inputIds);
            case OnnxClipBackend onnx:
                var spec = onnx.Spec;
                ClipTensorInputs.CheckTokens(spec, inputIds);
                var c = spec.Text.ContextLength;
                if (inputIds.shape[0] == 0) return empty(0, spec.EmbedDim, dtype: ScalarType.Float32);
                if (inputIds.shape[1] == c) return onnx.TextSession.EncodeText(inputIds);
                using (var padded = nn.functional.pad(inputIds.to(ScalarType.Int64), [0, c - inputIds.shape[1]], value: spec.Text.PadId))
                    return onnx.TextSession.EncodeText(padded);
            default:
                ClipTensorInputs.CheckTokens(backend.Spec, inputIds);
                return backend.EncodeText(inputIds.ToLongArray()).ToTensor();
        }
    }

    /// <summary>logits_per_image [N, M] and logits_per_text [M, N] of feature tensors.</summary>
    public static (Tensor PerImage, Tensor PerText) Logits(this IClipBackend backend, Tensor imageFeatures, Tensor textFeatures)
    {
        ArgumentNullException.ThrowIfNull(backend);
        if (backend is TorchClipBackend torchBackend) return torchBackend.Logits(imageFeatures, textFeatures);
        var (perImage, perText) = backend.Logits(imageFeatures.ToFloatArray(), textFeatures.ToFloatArray());
        return (perImage.ToTensor(), perText.ToTensor());
    }

    extension(OnnxClipBackend)
    {
        /// <summary>Exports the model's weights (image and text graphs) and opens them in ONNX Runtime.</summary>
        public static OnnxClipBackend FromModel(ClipModule model, ClipBackendOptions? options = null)
        {
            ArgumentNullException.ThrowIfNull(model);
            options ??= new ClipBackendOptions();
            var spec = model.Spec;
            float scale;
            float? bias;
            using (no_grad())
            {
                scale = model.LogitScale.ToSingle();
                bias = model.LogitBias?.ToSingle();
            }
            var sessions = new List<OnnxClipSession>();
            try
            {
                string? dir = options.OnnxDirectory;
                foreach (var kind in new[] { ClipOnnxKind.Image, ClipOnnxKind.Text })
                {
                    OnnxGraphBuilder b;
                    using (no_grad())
                    using (var weights = new ClipOnnxExporter.StateDictWeights(model))
                        b = ClipOnnxExporter.Build(spec, model.Plan, kind, weights.Get, options.EffectiveExport);
                    if (dir is null && b.WeightBytes < (1L << 31) - (256L << 20))
                    {
                        sessions.Add(new OnnxClipSession(b.ToBytes(), options.Session));
                        continue;
                    }
                    dir ??= Directory.CreateTempSubdirectory("clipgen-onnx-").FullName;
                    var path = Path.Combine(dir, ClipOnnxExporter.FileName(kind));
                    b.Save(path, new OnnxSaveOptions { ExternalData = options.Export.ExternalData });
                    sessions.Add(new OnnxClipSession(path, options.Session));
                }
                return new OnnxClipBackend(spec, sessions[0], sessions[1], scale, bias, options.Session);
            }
            catch
            {
                foreach (var s in sessions) s.Dispose();
                throw;
            }
        }
    }
}

/// <summary>A backend bound to one generated model type, so that pixels and tokens of another model do not compile.</summary>
public sealed class ClipBackend<TModel>(IClipBackend inner) : IDisposable where TModel : ClipModule, IClipModel<TModel>
{
    /// <summary>The untyped backend.</summary>
    public IClipBackend Inner { get; } = inner.Spec.Name == TModel.ModelSpec.Name
        ? inner
        : throw new ArgumentException($"backend of {inner.Spec.Name} cannot serve {TModel.ModelSpec.Name}");

    public BackendKind Kind => Inner.Kind;

    public ImageEmbeddings<TModel> EncodeImage(Pixels<TModel> pixels) => new(Inner.EncodeImage(pixels.Tensor));

    public TextEmbeddings<TModel> EncodeText(TokenIds<TModel> tokens) => new(Inner.EncodeText(tokens.Tensor));

    public ClipOutput Logits(ImageEmbeddings<TModel> image, TextEmbeddings<TModel> text)
    {
        var (perImage, perText) = Inner.Logits(image.Tensor, text.Tensor);
        return new ClipOutput(perImage, perText);
    }

    public ClipOutput Forward(Pixels<TModel> pixels, TokenIds<TModel> tokens) => Inner.Forward(pixels.Tensor, tokens.Tensor);

    public void Dispose() => Inner.Dispose();
}

/// <summary>The TorchSharp backend: the model's own forward under inference mode.</summary>
public sealed class TorchClipBackend : IClipBackend
{
    readonly ClipModule _model;
    readonly int _concurrentRuns;

    public TorchClipBackend(ClipModule model, ClipBackendOptions? options = null)
    {
        _model = model;
        _concurrentRuns = options?.TorchConcurrentRuns ?? 1;
        if (options?.Precision == OnnxPrecision.Int8 || options?.Export.Precision == OnnxPrecision.Int8)
            throw new ClipGenException("int8 precision runs on the ONNX Runtime backend only; the TorchSharp backend computes in float32");
        Limits.CheckThreads(_concurrentRuns, nameof(ClipBackendOptions.TorchConcurrentRuns));
        if (options?.TorchThreads is { } threads and not 0) torch.set_num_threads(Limits.CheckThreads(threads, nameof(ClipBackendOptions.TorchThreads)));
        _model.eval();
    }

    public BackendKind Kind => BackendKind.Torch;
    public ClipSpec Spec => _model.Spec;

    /// <summary>The wrapped model.</summary>
    public ClipModule Model => _model;

    public Tensor EncodeImage(Tensor pixelValues)
    {
        ClipTensorInputs.CheckPixels(Spec, pixelValues);
        return Split(pixelValues, _model.EncodeImage);
    }

    public Tensor EncodeText(Tensor inputIds)
    {
        ClipTensorInputs.CheckTokens(Spec, inputIds);
        return Split(inputIds, _model.EncodeText);
    }

    public ArrayTensor<float> EncodeImage(ArrayTensor<float> pixelValues)
    {
        ClipInputs.CheckPixels(Spec, pixelValues);
        using var input = pixelValues.ToTensor();
        using var features = EncodeImage(input);
        return features.ToFloatArray();
    }

    public ArrayTensor<float> EncodeText(ArrayTensor<long> inputIds)
    {
        ClipInputs.CheckTokens(Spec, inputIds);
        using var input = inputIds.ToTensor();
        using var features = EncodeText(input);
        return features.ToFloatArray();
    }

    /// <summary>
    /// Runs <paramref name="encode"/> on the whole batch, or on <see cref="ClipBackendOptions.TorchConcurrentRuns"/> contiguous
    /// parts at once (inference mode and dispose scopes are per thread, so each worker sets its own) and concatenates.
    /// </summary>
    Tensor Split(Tensor input, Func<Tensor, Tensor> encode)
    {
        long batch = input.shape[0];
        if (batch == 0) return torch.empty(0, Spec.EmbedDim, dtype: ScalarType.Float32);
        int parts = (int)Math.Max(1, Math.Min(_concurrentRuns, batch));
        if (parts == 1)
        {
            using var _ = torch.inference_mode();
            return encode(input);
        }
        var results = new Tensor[parts];
        try
        {
            Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, p =>
            {
                long start = batch * p / parts, end = batch * (p + 1) / parts;
                using var _ = torch.inference_mode();
                using var part = input.narrow(0, start, end - start);
                results[p] = encode(part);
            });
            using var __ = torch.inference_mode();
            return torch.cat(results, 0);
        }
        finally
        {
            foreach (var r in results) r?.Dispose();
        }
    }

    public (Tensor PerImage, Tensor PerText) Logits(Tensor imageFeatures, Tensor textFeatures)
    {
        using var _ = torch.inference_mode();
        return _model.Logits(imageFeatures, textFeatures);
    }

    public (ArrayTensor<float> PerImage, ArrayTensor<float> PerText) Logits(ArrayTensor<float> imageFeatures, ArrayTensor<float> textFeatures)
    {
        using var img = imageFeatures.ToTensor();
        using var txt = textFeatures.ToTensor();
        var (perImage, perText) = Logits(img, txt);
        using (perImage)
        using (perText)
            return (perImage.ToFloatArray(), perText.ToFloatArray());
    }

    /// <summary>The model belongs to the caller; nothing to release.</summary>
    public void Dispose() { }
}
