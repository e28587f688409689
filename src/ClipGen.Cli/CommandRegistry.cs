using System.CommandLine;
using System.CommandLine.Help;
using ClipGen.Cli.Commands;

namespace ClipGen.Cli;

/// <summary>The command tree of <c>clipgen</c>. Adding a command: a <see cref="CliCommand"/> class and one line here (docs/cli.md).</summary>
static class CommandRegistry
{
    /// <summary>A new tree (cheap: options are plain objects), in the order <c>--help</c> lists the commands.</summary>
    public static Command Root()
    {
        var root = new Command("clipgen", "CLIP models from YAML specs, on TorchSharp and ONNX Runtime.")
        {
            new DemoCommand(),
            new TrainCommand(),
            new ModelsCommand(),
            new InferCommand(),
            new ExportOnnxCommand(),
            new ParityCommand(),
            new TokenizeCommand(),
            new PreprocessCommand(),
            new Command("spec", "model spec tools") { new SpecInferCommand() },
            new ConvertCommand(),
            new DownloadCommand(),
            new ClassifyCommand(),
            new EmbedCommand(),
            new SearchCommand(),
            new ServeCommand(),
        };
        var version = new Option<bool>("--version") { Description = "print the version" };
        root.Options.Add(new HelpOption());
        root.Options.Add(version);
        root.SetAction(parse =>
        {
            if (parse.GetValue(version))
            {
                parse.InvocationConfiguration.Output.WriteLine(typeof(CliHost).Assembly.GetName().Version);
                return 0;
            }
            parse.InvocationConfiguration.Error.WriteLine("error: name a command. Run 'clipgen --help' for the commands.");
            return 2;
        });
        return root;
    }
}
