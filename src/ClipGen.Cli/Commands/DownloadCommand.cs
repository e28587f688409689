using System.Globalization;
using ClipGen.Downloads;
using ClipGen.Modeling;

namespace ClipGen.Cli.Commands;

/// <summary><c>clipgen download</c>: a spec's published weights into the cache, verified by sha256, resumable.</summary>
sealed class DownloadCommand : ICommand
{
    public string Name => "download";
    public string Summary => "download a model's published weights into the cache (sha256-verified, resumable)";
    public string Usage => "clipgen download <model> [--source openai|hf] [--cache DIR] [--url-base http://mirror/]\n"
        + "  The cache defaults to $CLIPGEN_CACHE or ~/.cache/clipgen. Prints the file's path on stdout.";

    public int Run(CliArgs args, TextWriter stdout, TextWriter stderr)
    {
        var model = args.Positional.Count == 1 ? args.Positional[0] : args.Get("model")
            ?? throw new CliUsageException("name one model, e.g. clipgen download ViT-B-32-quickgelu");
        var source = args.Get("source");
        var cache = args.Get("cache");
        var urlBase = args.Get("url-base");
        var quiet = args.Has("quiet");
        args.RejectUnknown();

        var spec = ClipModelFactory.ResolveSpec(model);
        var pretrained = ModelDownloader.Select(spec, source);
        Uri? baseUri = null;
        if (urlBase is not null && (!Uri.TryCreate(urlBase, UriKind.Absolute, out baseUri) || (baseUri.Scheme != "http" && baseUri.Scheme != "https")))
            throw new CliUsageException($"--url-base must be an absolute http(s) URL, not '{urlBase}'");
        using var downloader = new ModelDownloader(cache, urlBase: baseUri);
        bool printed = false;
        void Report(DownloadProgress p)
        {
            if (quiet) return;
            var mb = p.Received / 1e6;
            var total = p.Total is { } t ? $" / {t / 1e6:0.0} MB ({100.0 * p.Received / Math.Max(1, t):0}%)" : " MB";
            stderr.Write(string.Create(CultureInfo.InvariantCulture, $"\r{p.File}: {mb:0.0}{total} {p.BytesPerSecond / 1e6:0.0} MB/s   "));
            printed = true;
        }
        var path = downloader.DownloadAsync(spec, pretrained, Report).GetAwaiter().GetResult();
        if (printed) stderr.WriteLine();
        stderr.WriteLine($"{spec.Name} ({pretrained.Source}): {path}" + (pretrained.Sha256.Length > 0 ? " (sha256 verified)" : " (no sha256 published: not verified)"));
        stdout.WriteLine(path);
        return 0;
    }
}
