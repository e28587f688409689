using ClipGen.Cli.Commands;

namespace ClipGen.Cli;

static class CommandRegistry
{
    // One line per command, in the order --help lists them.
    public static IReadOnlyList<ICommand> All() =>
    [
        new DemoCommand(),
        new TrainCommand(),
        new ModelsCommand(),
        new InferCommand(),
        new ExportOnnxCommand(),
        new ParityCommand(),
        new TokenizeCommand(),
        new PreprocessCommand(),
        new SpecInferCommand(),
        new ConvertCommand(),
        new DownloadCommand(),
        new ClassifyCommand(),
        new EmbedCommand(),
        new SearchCommand(),
        new ServeCommand(),
    ];
}
