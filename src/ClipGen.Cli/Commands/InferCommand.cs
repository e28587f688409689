using System.CommandLine;
using ClipGen.Backends;
using ClipGen.Checkpoints;
using ClipGen.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace ClipGen.Cli.Commands;

/// <summary><c>clipgen infer</c>: features and logits of given inputs, as the reference implementations compute them.</summary>
sealed class InferCommand : CliCommand
{
    readonly Option<string?> _model = CliOptions.Text("--model", "name|alias|spec.yaml", "the model's spec (default: inferred from the weights, printed to stderr)");
    readonly Option<string?> _weights = CliOptions.Text("--weights", "file|folder", "safetensors, torch.save .pt/.bin, OpenAI TorchScript .pt, an open_clip hub folder or a Hugging Face folder");
    readonly Option<string?> _inputs = CliOptions.Text("--inputs", "in.safetensors", "pixel_values and/or input_ids");
    readonly Option<string?> _output = CliOptions.Text("--output", "out.safetensors", "where the features and logits go");
    readonly Option<bool> _keepDType = CliOptions.Flag("--keep-dtype", "compute in the checkpoint's dtype (torch backend only)");
    readonly Option<Backends.BackendKind> _backend = AppHelpers.BackendOption();

    public InferCommand() : base("infer", "encode pixel_values / input_ids from a safetensors file and write features and logits")
    {
        Add(_model);
        Required(_weights);
        Required(_inputs);
        Required(_output);
        Add(_keepDType);
        Add(_backend);
    }

    public override int Run(ParseResult args, TextWriter stdout, TextWriter stderr)
    {
        var modelArg = args.GetValue(_model);
        var weights = Value(args, _weights);
        var inputsPath = Value(args, _inputs);
        var outputPath = Value(args, _output);
        var keepDType = args.GetValue(_keepDType);
        var backendKind = args.GetValue(_backend);

        var spec = CommandHelpers.ResolveOrInferSpec(modelArg, weights, stderr);
        using var inputs = CheckpointLoader.ReadStateDict(inputsPath);
        var px = inputs.Tensors.GetValueOrDefault("pixel_values");
        var ids = inputs.Tensors.GetValueOrDefault("input_ids");
        if (px is null && ids is null)
            throw new ClipGenException($"inputs '{inputsPath}' hold neither 'pixel_values' nor 'input_ids' (found: {string.Join(", ", inputs.Tensors.Keys)})");
        if (px is not null && (px.dim() != 4 || px.shape[1] != 3 || px.shape[2] != spec.Vision.ImageSize || px.shape[3] != spec.Vision.ImageSize))
            throw new ClipGenException($"inputs '{inputsPath}': pixel_values is [{string.Join(",", px.shape)}] but {spec.Name} needs [N,3,{spec.Vision.ImageSize},{spec.Vision.ImageSize}]");
        if (ids is not null && (ids.dim() != 2 || ids.shape[1] > spec.Text.ContextLength))
            throw new ClipGenException($"inputs '{inputsPath}': input_ids is [{string.Join(",", ids.shape)}] but {spec.Name} needs [M,L] with L <= {spec.Text.ContextLength}");

        var options = new LoadOptions { KeepDType = keepDType, Logger = new LineLogger(stderr) };
        using var model = ClipModelFactory.Load(spec, weights, options);
        var dtype = model.LogitScale.dtype;
        using var _ = no_grad();
        if (keepDType && backendKind != BackendKind.Torch)
            throw new ClipGenException("--keep-dtype works with --backend torch only: the ONNX export computes in float32");
        using var backend = ClipBackends.Create(model, backendKind);
        var results = new Dictionary<string, Tensor>();
        try
        {
            Tensor? img = null, txt = null;
            if (px is not null) results["image_features"] = img = backend.EncodeImage(px.to(backendKind == BackendKind.Torch ? dtype : ScalarType.Float32));
            if (ids is not null) results["text_features"] = txt = backend.EncodeText(ids.to(ScalarType.Int64));
            if (img is not null && txt is not null)
            {
                var (perImage, perText) = backend.Logits(img, txt);
                results["logits_per_image"] = perImage;
                var contiguous = perText.contiguous();
                if (!ReferenceEquals(contiguous, perText)) perText.Dispose();
                results["logits_per_text"] = contiguous;
            }
            IO.TensorFiles.SaveSafetensors(outputPath, results);
            stderr.WriteLine($"{spec.Name} ({backendKind.ToString().ToLowerInvariant()}): wrote {string.Join(", ", results.Select(kv => $"{kv.Key} [{string.Join(",", kv.Value.shape)}]"))} to {outputPath}");
        }
        finally
        {
            foreach (var t in results.Values) t.Dispose();
        }
        return 0;
    }
}
