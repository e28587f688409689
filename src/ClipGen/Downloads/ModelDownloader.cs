using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using ClipGen.Specs;

namespace ClipGen.Downloads;

/// <summary>Progress of a download: bytes on disk so far (resumed bytes included) and the total when the server says it.</summary>
public readonly record struct DownloadProgress(string File, long Received, long? Total, double BytesPerSecond);

/// <summary>
/// Downloads a spec's published checkpoints (<see cref="ClipSpec.Pretrained"/>) into a cache folder:
/// into <c>&lt;file&gt;.partial</c> first, resuming it with an HTTP <c>Range</c> request after a dropped connection (or in a later run),
/// then verifying the sha256 and renaming the file into place. A file whose sha256 differs is deleted, never left in the cache.
/// </summary>
public sealed class ModelDownloader : IDisposable
{
    readonly HttpClient _http;
    readonly bool _ownsHttp;

    /// <param name="cacheDirectory">The cache folder; default <see cref="DefaultCacheDirectory"/>.</param>
    /// <param name="handler">The HTTP handler to use (tests pass their own); a default <see cref="SocketsHttpHandler"/> otherwise.</param>
    /// <param name="urlBase">
    /// When set, every URL's scheme, host and port are replaced by this one's (its path is prepended), e.g. a mirror or a test server
    /// on 127.0.0.1. Explicit only: no environment variable changes where ClipGen downloads from.
    /// </param>
    public ModelDownloader(string? cacheDirectory = null, HttpMessageHandler? handler = null, Uri? urlBase = null)
    {
        CacheDirectory = Path.GetFullPath(cacheDirectory ?? DefaultCacheDirectory);
        UrlBase = urlBase;
        _ownsHttp = true;
        _http = new HttpClient(handler ?? new SocketsHttpHandler { AutomaticDecompression = DecompressionMethods.None }, disposeHandler: handler is null)
        {
            Timeout = Timeout.InfiniteTimeSpan,
        };
        _http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("ClipGen", typeof(ModelDownloader).Assembly.GetName().Version?.ToString() ?? "0"));
    }

    /// <summary><c>$CLIPGEN_CACHE</c>, else <c>~/.cache/clipgen</c>.</summary>
    public static string DefaultCacheDirectory =>
        Environment.GetEnvironmentVariable("CLIPGEN_CACHE") is { Length: > 0 } env ? env
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "clipgen");

    /// <summary>The cache folder.</summary>
    public string CacheDirectory { get; }

    /// <summary>The URL base override, if any.</summary>
    public Uri? UrlBase { get; }

    /// <summary>How many times a dropped transfer is resumed within one call (default 3).</summary>
    public int MaxAttempts { get; init; } = 3;

    /// <summary>How long one read may stall before the attempt is abandoned (default 60 s).</summary>
    public TimeSpan ReadTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>The published checkpoint of <paramref name="spec"/> from <paramref name="source"/> (default: the first one listed).</summary>
    public static PretrainedSpec Select(ClipSpec spec, string? source)
    {
        if (spec.Pretrained.Count == 0)
            throw new ClipGenException($"spec '{spec.Name}' lists no published weights (no 'pretrained:' entries); 'clipgen models' lists the specs, and the '-quickgelu' ones carry OpenAI's");
        if (source is null) return spec.Pretrained[0];
        return spec.Pretrained.FirstOrDefault(p => string.Equals(p.Source, source, StringComparison.OrdinalIgnoreCase))
            ?? throw new ClipGenException($"spec '{spec.Name}' has no '{source}' weights; it has: {string.Join(", ", spec.Pretrained.Select(p => p.Source))}");
    }

    /// <summary>Where a published checkpoint goes in the cache: <c>&lt;cache&gt;/&lt;spec&gt;/&lt;source&gt;/&lt;file name of the URL&gt;</c>.</summary>
    public string CachePath(ClipSpec spec, PretrainedSpec pretrained)
    {
        var uri = new Uri(pretrained.Url);
        var fileName = Path.GetFileName(uri.AbsolutePath);
        if (string.IsNullOrEmpty(fileName) || fileName is "." or "..") fileName = "weights";
        return Path.Combine(CacheDirectory, Safe(spec.Name), Safe(pretrained.Source), Safe(fileName));
    }

    static string Safe(string part) => string.Concat(part.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_')).TrimStart('.') is { Length: > 0 } s ? s : "_";

    /// <summary>
    /// Downloads the published checkpoint (or finds it in the cache, verified) and returns its path.
    /// </summary>
    /// <exception cref="ClipGenException">The server fails, the transfer cannot be completed after <see cref="MaxAttempts"/>, or the sha256 differs.</exception>
    public async Task<string> DownloadAsync(ClipSpec spec, PretrainedSpec pretrained, Action<DownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var target = CachePath(spec, pretrained);
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        var expected = pretrained.Sha256.ToLowerInvariant();
        if (File.Exists(target))
        {
            if (expected.Length == 0 || await Sha256Async(target, cancellationToken).ConfigureAwait(false) == expected) return target;
            File.Delete(target); // a damaged cache entry: fetch it again
        }

        var partial = target + ".partial";
        var url = Resolve(pretrained.Url);
        Exception? last = null;
        for (int attempt = 1; attempt <= Math.Max(1, MaxAttempts); attempt++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            try
            {
                await TransferAsync(url, partial, Path.GetFileName(target), progress, cancellationToken).ConfigureAwait(false);
                last = null;
                break;
            }
            catch (Exception e) when (e is HttpRequestException or IOException or TimeoutException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
            {
                last = e; // keep the .partial file and resume it
            }
        }
        if (last is not null)
            throw new ClipGenException($"downloading {url} failed after {Math.Max(1, MaxAttempts)} attempt(s): {last.Message.ReplaceLineEndings(" ")} (the partial file {partial} is kept; run again to resume)", last);

        if (expected.Length > 0)
        {
            var actual = await Sha256Async(partial, cancellationToken).ConfigureAwait(false);
            if (actual != expected)
            {
                File.Delete(partial);
                throw new ClipGenException($"downloaded {url} but its sha256 is {actual}, not {expected} as spec '{spec.Name}' says; the file was deleted");
            }
        }
        File.Move(partial, target, overwrite: true);
        return target;
    }

    Uri Resolve(string url)
    {
        var uri = new Uri(url, UriKind.Absolute);
        if (UrlBase is null) return uri;
        var basePath = UrlBase.AbsolutePath.TrimEnd('/');
        return new UriBuilder(UrlBase.Scheme, UrlBase.Host, UrlBase.Port, basePath + uri.AbsolutePath) { Query = uri.Query.TrimStart('?') }.Uri;
    }

    async Task TransferAsync(Uri url, string partial, string displayName, Action<DownloadProgress>? progress, CancellationToken cancellationToken)
    {
        long have = File.Exists(partial) ? new FileInfo(partial).Length : 0;
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        if (have > 0) request.Headers.Range = new RangeHeaderValue(have, null);
        using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);

        if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable && have > 0)
            return; // the partial file is already whole; the sha256 decides
        if (!response.IsSuccessStatusCode)
        {
            var message = $"the server answered {(int)response.StatusCode} {response.ReasonPhrase} for {url}";
            if ((int)response.StatusCode >= 500) throw new HttpRequestException(message);
            throw new ClipGenException(message);
        }
        bool append = have > 0 && response.StatusCode == HttpStatusCode.PartialContent;
        if (append && response.Content.Headers.ContentRange is { From: { } from } && from != have)
            throw new IOException($"the server resumed at byte {from}, not {have}");
        if (!append) have = 0;
        long? total = response.Content.Headers.ContentLength is { } length ? length + have : null;
        if (response.Content.Headers.ContentRange?.Length is { } full) total = full;

        await using var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        await using var file = new FileStream(partial, append ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true);
        var buffer = new byte[1 << 16];
        var clock = Stopwatch.StartNew();
        long received = have, startedAt = have;
        var lastReport = TimeSpan.Zero;
        while (true)
        {
            using var stall = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            stall.CancelAfter(ReadTimeout);
            int n;
            try { n = await body.ReadAsync(buffer, stall.Token).ConfigureAwait(false); }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested) { throw new TimeoutException($"no data for {ReadTimeout.TotalSeconds:0} s"); }
            if (n == 0) break;
            await file.WriteAsync(buffer.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
            received += n;
            if (progress is not null && (clock.Elapsed - lastReport).TotalMilliseconds >= 100)
            {
                lastReport = clock.Elapsed;
                progress(new DownloadProgress(displayName, received, total, (received - startedAt) / Math.Max(1e-3, clock.Elapsed.TotalSeconds)));
            }
        }
        await file.FlushAsync(cancellationToken).ConfigureAwait(false);
        progress?.Invoke(new DownloadProgress(displayName, received, total, (received - startedAt) / Math.Max(1e-3, clock.Elapsed.TotalSeconds)));
        if (total is { } t && received < t)
            throw new IOException($"the connection closed after {received} of {t} bytes");
    }

    /// <summary>The lower-case hex sha256 of a file.</summary>
    public static async Task<string> Sha256Async(string path, CancellationToken cancellationToken = default)
    {
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, useAsync: true);
        var hash = await SHA256.HashDataAsync(stream, cancellationToken).ConfigureAwait(false);
        return Convert.ToHexStringLower(hash);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_ownsHttp) _http.Dispose();
    }
}
