using System.CommandLine;
using ClipGen.Checkpoints;
using ClipGen.Modeling;

namespace ClipGen.Cli.Commands;

/// <summary><c>clipgen convert</c>: a checkpoint in another ecosystem's layout (OpenAI, open_clip, Hugging Face), bit for bit.</summary>
sealed class ConvertCommand : CliCommand
{
    readonly Option<string?> _model = CliOptions.Text("--model", "name|alias|spec.yaml", "the model's spec (default: inferred from the weights)");
    readonly Option<string?> _weights = CliOptions.Text("--weights", "file|folder", "the checkpoint");
    readonly Option<ConversionTarget?> _to = CliOptions.Parsed<ConversionTarget?>("--to", "openai|open_clip|hf",
        "openai: model.safetensors (OpenAI keys) + <spec>.yaml; open_clip: open_clip_config.json + open_clip_model.safetensors; hf: config.json + model.safetensors + preprocessor_config.json",
        s => CheckpointConverter.ParseTarget(s), null);
    readonly Option<string?> _output = CliOptions.Text("--output", "folder|file.safetensors", "where the converted files go");

    public ConvertCommand() : base("convert", "convert weights between OpenAI, open_clip and Hugging Face layouts (safetensors + config)")
    {
        Add(_model);
        Required(_weights);
        Required(_to);
        Required(_output);
    }

    public override int Run(ParseResult args, TextWriter stdout, TextWriter stderr)
    {
        var modelArg = args.GetValue(_model);
        var weights = Value(args, _weights);
        var target = args.GetValue(_to) ?? throw new CliUsageException("missing required option --to");
        var to = args.GetResult(_to)!.Tokens[^1].Value;
        var output = Value(args, _output);

        var spec = CommandHelpers.ResolveOrInferSpec(modelArg, weights, stderr);
        var files = CheckpointConverter.Convert(spec, weights, target, output, new LineLogger(stderr));
        foreach (var f in files) stdout.WriteLine(f);
        stderr.WriteLine($"{spec.Name}: converted {weights} to {to} ({files.Count} files)");
        return 0;
    }
}
