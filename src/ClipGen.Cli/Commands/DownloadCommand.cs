using System.CommandLine;
using System.Globalization;
using ClipGen.Downloads;
using ClipGen.Modeling;

namespace ClipGen.Cli.Commands;

/// <summary>
/// <c>clipgen download</c>: a spec's published weights into the cache, verified by sha256 (pinned in the spec, or for a Hugging Face
/// Hub file the one the Hub reports), resumable. Prints the file on stdout; on stderr, where the checksum came from and the folder.
/// </summary>
sealed class DownloadCommand : CliCommand
{
    readonly Argument<string?> _modelArgument = new("model") { Description = "the model: a name, an alias or a spec.yaml. Prints the file's path on stdout. Hugging Face Hub files are verified against " +
        "the sha256 the Hub reports unless the spec pins one; the folder gets config.json / open_clip_config.json written from the spec, so " +
        "'clipgen infer --weights <folder>' loads it", Arity = ArgumentArity.ZeroOrOne };
    readonly Option<string?> _model = CliOptions.Text("--model", "NAME", "the model, when not given as the argument");
    readonly Option<string?> _pretrained = CliOptions.Text("--pretrained", "TAG",
        "which of the spec's published weights, by open_clip's tag (openai, laion2b_s34b_b79k, webli, …; 'clipgen models --pretrained' lists them; default: the first)", "--source");
    readonly Option<string?> _cache = CliOptions.Text("--cache", "DIR", "the cache (default $CLIPGEN_CACHE, else $XDG_CACHE_HOME/clipgen or ~/.cache/clipgen)");
    readonly Option<string?> _urlBase = CliOptions.Text("--url-base", "http://mirror/", "fetch the files from this mirror instead");
    readonly Option<TimeSpan?> _timeout = Seconds("--timeout", "give up an attempt when connecting, waiting for headers or a stalled transfer takes longer (default 30; 3 attempts)");
    readonly Option<TimeSpan?> _maxTime = Seconds("--max-time", "give up when the whole download takes longer (default: no limit)");
    readonly Option<bool> _quiet = CliOptions.Flag("--quiet", "no progress");

    public DownloadCommand() : base("download", "download a model's published weights into the cache (sha256-verified, resumable)")
    {
        Arguments.Add(_modelArgument);
        foreach (var o in new Option[] { _model, _pretrained, _cache, _urlBase, _timeout, _maxTime, _quiet }) Add(o);
    }

    public override int Run(ParseResult args, TextWriter stdout, TextWriter stderr)
    {
        var model = args.GetValue(_modelArgument) ?? args.GetValue(_model)
            ?? throw new CliUsageException("name one model, e.g. clipgen download ViT-B-32-quickgelu");
        var source = args.GetValue(_pretrained);
        var cache = args.GetValue(_cache);
        var urlBase = args.GetValue(_urlBase);
        var quiet = args.GetValue(_quiet);
        var timeout = args.GetValue(_timeout) ?? ModelDownloader.DefaultTimeout;
        var maxTime = args.GetValue(_maxTime);

        var spec = ClipModelFactory.ResolveSpec(model);
        var pretrained = ModelDownloader.Select(spec, source);
        Uri? baseUri = null;
        if (urlBase is not null && (!Uri.TryCreate(urlBase, UriKind.Absolute, out baseUri) || (baseUri.Scheme != "http" && baseUri.Scheme != "https")))
            throw new CliUsageException($"--url-base must be an absolute http(s) URL, not '{urlBase}'");
        using var downloader = new ModelDownloader(cache, urlBase: baseUri, timeout: timeout) { MaxTime = maxTime };
        bool printed = false;
        void Report(DownloadProgress p)
        {
            if (quiet) return;
            var mb = p.Received / 1e6;
            var total = p.Total is { } t ? $" / {t / 1e6:0.0} MB ({100.0 * p.Received / Math.Max(1, t):0}%)" : " MB";
            stderr.Write(string.Create(CultureInfo.InvariantCulture, $"\r{p.File}: {mb:0.0}{total} {p.BytesPerSecond / 1e6:0.0} MB/s   "));
            printed = true;
        }
        // A terminal gets a Spectre.Console bar (bytes, rate, time left); redirected output gets today's plain progress text.
        var result = !quiet && CliProgress.Interactive(stderr)
            ? CliProgress.Show($"{spec.Name} ({pretrained.Source})", bytes: true,
                bar => downloader.DownloadAsync(spec, pretrained, p => bar.Update(p.Received, p.Total, p.File)).GetAwaiter().GetResult())
            : downloader.DownloadAsync(spec, pretrained, Report).GetAwaiter().GetResult();
        if (printed) stderr.WriteLine();
        var where = pretrained.IsHub ? $"{pretrained.Repo}@{pretrained.Revision}" + (result.Commit is { } c ? $" (commit {c})" : "") : pretrained.Url;
        stderr.WriteLine($"{spec.Name} ({pretrained.Source}, {where}): {result.Path}" + (result.FromCache ? " (cached)" : ""));
        stderr.WriteLine(result.Origin == Sha256Origin.None
            ? $"  {result.Sha256Description}"
            : $"  sha256 {result.Sha256} verified: {result.Sha256Description}");
        if (result.Origin == Sha256Origin.Hub)
            stderr.WriteLine($"  to pin it, add 'sha256: {result.Sha256}'" + (result.Commit is { } pin ? $" and 'revision: {pin}'" : "") + $" under pretrained '{pretrained.Source}' in the spec");
        if (result.Configs.Count > 0)
            stderr.WriteLine($"  folder: {result.Folder} (config written from the spec: {string.Join(", ", result.Configs.Select(Path.GetFileName))}); load it with: clipgen infer --model {model} --weights {result.Folder}");
        stdout.WriteLine(result.Path);
        return 0;
    }

    static Option<TimeSpan?> Seconds(string name, string description) => new(name)
    {
        Description = description,
        HelpName = "SECONDS",
        Arity = CliOptions.Repeatable,
        CustomParser = r =>
        {
            var text = r.Tokens[^1].Value;
            if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var s) && double.IsFinite(s) && s > 0 && s <= 86_400 * 7)
                return TimeSpan.FromSeconds(s);
            r.AddError($"{name} takes a number of seconds greater than 0 (at most a week), not '{ErrorText.Value(text)}'");
            return null;
        },
    };
}
