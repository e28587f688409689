using ClipGen.Server;

namespace ClipGen.Cli.Commands;

/// <summary><c>clipgen serve</c>: parses the options and runs <see cref="ClipServer"/> (src/ClipGen.Server) until Ctrl+C or SIGTERM.</summary>
sealed class ServeCommand : ICommand
{
    public string Name => "serve";
    public string Summary => "serve a model over HTTP: OpenAI-style /v1/embeddings, /v1/classify, /v1/search, a search page, /metrics";
    public string Usage => "clipgen serve " + AppHelpers.ModelUsage + " [--index embeddings.safetensors] [--urls http://127.0.0.1:8080] " +
        "[--max-batch 32] [--max-wait-ms 5] [--queue-capacity 256] [--max-body-bytes 16777216] [--max-inputs 64] [--quiet]" +
        "\n  Endpoints, limits and errors: docs/serve.md. --max-batch 1 turns dynamic batching off.";

    public int Run(CliArgs args, TextWriter stdout, TextWriter stderr)
    {
        var model = AppHelpers.ModelOptions(args);
        var defaults = new ServeOptions();
        var options = defaults with
        {
            Model = model.Model,
            Weights = model.Weights,
            Vocabulary = model.Vocab,
            Backend = model.Backend,
            BackendOptions = AppHelpers.BackendOptions(model),
            Index = args.Get("index"),
            Urls = args.Get("urls") is { } urls ? urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) : defaults.Urls,
            MaxBatch = args.GetInt("max-batch", defaults.MaxBatch),
            MaxWaitMs = args.GetInt("max-wait-ms", defaults.MaxWaitMs),
            QueueCapacity = args.GetInt("queue-capacity", defaults.QueueCapacity),
            MaxBodyBytes = args.GetInt("max-body-bytes", (int)defaults.MaxBodyBytes),
            MaxInputs = args.GetInt("max-inputs", defaults.MaxInputs),
            Quiet = args.Has("quiet"),
        };
        args.RejectUnknown();
        ClipServer.ServeAsync(options, stderr.WriteLine).GetAwaiter().GetResult();
        return 0;
    }
}
