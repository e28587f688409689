using ClipGen.Checkpoints;
using ClipGen.Specs;

namespace ClipGen.Cli.Commands;

/// <summary><c>clipgen spec infer</c>: the spec of a checkpoint, from its shapes and config, as YAML.</summary>
sealed class SpecInferCommand : ICommand
{
    public string Name => "spec infer";
    public string Summary => "infer a model spec from a checkpoint's shapes and config; write it as YAML";
    public string Usage => "clipgen spec infer --weights <file|folder> [--output spec.yaml] [--name NAME]";

    public int Run(CliArgs args, TextWriter stdout, TextWriter stderr)
    {
        var weights = args.Require("weights");
        var output = args.Get("output");
        var name = args.Get("name");
        args.RejectUnknown();

        var inferred = SpecInference.Infer(weights, name);
        foreach (var note in inferred.Notes) stderr.WriteLine(note);
        var yaml = $"# Inferred by 'clipgen spec infer' from {Path.GetFileName(Path.GetFullPath(weights).TrimEnd(Path.DirectorySeparatorChar))}.\n" + SpecYamlWriter.Write(inferred.Spec);
        if (output is null) stdout.Write(yaml);
        else
        {
            var full = Path.GetFullPath(output);
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            File.WriteAllText(full, yaml);
            stderr.WriteLine($"wrote {output}");
        }
        return 0;
    }
}
