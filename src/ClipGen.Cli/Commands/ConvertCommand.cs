using ClipGen.Checkpoints;
using ClipGen.Modeling;

namespace ClipGen.Cli.Commands;

/// <summary><c>clipgen convert</c>: a checkpoint in another ecosystem's layout (OpenAI, open_clip, Hugging Face), bit for bit.</summary>
sealed class ConvertCommand : ICommand
{
    public string Name => "convert";
    public string Summary => "convert weights between OpenAI, open_clip and Hugging Face layouts (safetensors + config)";
    public string Usage => "clipgen convert [--model <name|alias|spec.yaml>] --weights <file|folder> --to openai|open_clip|hf --output <folder|file.safetensors>\n"
        + "  openai: model.safetensors (OpenAI keys) + <spec>.yaml; open_clip: open_clip_config.json + open_clip_model.safetensors;\n"
        + "  hf: config.json + model.safetensors + preprocessor_config.json. Without --model the spec is inferred from the weights.";

    public int Run(CliArgs args, TextWriter stdout, TextWriter stderr)
    {
        var modelArg = args.Get("model");
        var weights = args.Require("weights");
        var to = args.Require("to");
        var output = args.Require("output");
        args.RejectUnknown();

        var target = CheckpointConverter.ParseTarget(to);
        var spec = CommandHelpers.ResolveOrInferSpec(modelArg, weights, stderr);
        var files = CheckpointConverter.Convert(spec, weights, target, output, new LineLogger(stderr));
        foreach (var f in files) stdout.WriteLine(f);
        stderr.WriteLine($"{spec.Name}: converted {weights} to {to} ({files.Count} files)");
        return 0;
    }
}
