using System.CommandLine;
using ClipGen.Server;

namespace ClipGen.Cli.Commands;

/// <summary><c>clipgen serve</c>: turns flags into <see cref="ServeOptions"/>; the server itself is ClipGen.Server (docs/serve.md).</summary>
sealed class ServeCommand : CliCommand
{
    static readonly ServeOptions Defaults = new();
    readonly ModelOptionSet _model;
    readonly Option<string?> _index, _urls;
    readonly Option<int> _maxBatch, _maxWait, _queue, _maxBody, _maxInputs;
    readonly Option<bool> _quiet;

    public ServeCommand() : base("serve", "serve a model over HTTP: OpenAI-style /v1/embeddings, /v1/classify, /v1/search, a search page, /metrics")
    {
        _model = new ModelOptionSet(this);
        _index = Add(CliOptions.Text("--index", "embeddings.safetensors", "an index from clipgen embed, for /v1/search and the page"));
        _urls = Add(CliOptions.Text("--urls", "URLS", $"where to listen, ';'-separated (default {string.Join(";", Defaults.Urls)})"));
        _maxBatch = Add(CliOptions.Int("--max-batch", Defaults.MaxBatch, "the most inputs one forward pass takes; 1 turns dynamic batching off", min: 1));
        _maxWait = Add(CliOptions.Int("--max-wait-ms", Defaults.MaxWaitMs, "how long a batch waits for more requests", min: 0));
        _queue = Add(CliOptions.Int("--queue-capacity", Defaults.QueueCapacity, "inputs waiting at most; past it the server answers 503 with Retry-After", min: 1));
        _maxBody = Add(CliOptions.Int("--max-body-bytes", (int)Defaults.MaxBodyBytes, "the largest request body", min: 1024));
        _maxInputs = Add(CliOptions.Int("--max-inputs", Defaults.MaxInputs, "the most inputs (texts or images) in one request", min: 1));
        _quiet = Add(CliOptions.Flag("--quiet", "no request log"));
    }

    public override int Run(ParseResult args, TextWriter stdout, TextWriter stderr)
    {
        var model = _model.Read(args);
        var options = Defaults with
        {
            Model = model.Model,
            Weights = model.Weights,
            Vocabulary = model.Vocab,
            Backend = model.Backend,
            BackendOptions = AppHelpers.BackendOptions(model),
            Index = args.GetValue(_index),
            Urls = args.GetValue(_urls) is { } urls ? urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) : Defaults.Urls,
            MaxBatch = args.GetValue(_maxBatch),
            MaxWaitMs = args.GetValue(_maxWait),
            QueueCapacity = args.GetValue(_queue),
            MaxBodyBytes = args.GetValue(_maxBody),
            MaxInputs = args.GetValue(_maxInputs),
            Quiet = args.GetValue(_quiet),
        };
        ClipServer.ServeAsync(options, stderr.WriteLine).GetAwaiter().GetResult();
        return 0;
    }
}
