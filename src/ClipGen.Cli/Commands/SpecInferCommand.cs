using System.CommandLine;
using ClipGen.Checkpoints;
using ClipGen.Specs;

namespace ClipGen.Cli.Commands;

/// <summary><c>clipgen spec infer</c>: the spec of a checkpoint, from its shapes and config, as YAML.</summary>
sealed class SpecInferCommand : CliCommand
{
    readonly Option<string?> _weights = CliOptions.Text("--weights", "file|folder", "the checkpoint");
    readonly Option<string?> _output = CliOptions.Text("--output", "spec.yaml", "write the spec here (default: stdout)");
    readonly Option<string?> _name = CliOptions.Text("--name", "NAME", "the spec's name");

    /// <summary>The subcommand <c>infer</c> of <c>clipgen spec</c>.</summary>
    public SpecInferCommand() : base("infer", "infer a model spec from a checkpoint's shapes and config; write it as YAML")
    {
        Required(_weights);
        Add(_output);
        Add(_name);
    }

    public override int Run(ParseResult args, TextWriter stdout, TextWriter stderr)
    {
        var weights = Value(args, _weights);
        var output = args.GetValue(_output);
        var name = args.GetValue(_name);

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
