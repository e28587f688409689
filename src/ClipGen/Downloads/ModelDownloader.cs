using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using ClipGen.Checkpoints;
using ClipGen.Specs;

namespace ClipGen.Downloads;

/// <summary>Progress of a download: bytes on disk so far (resumed bytes included) and the total when the server says it.</summary>
public readonly record struct DownloadProgress(string File, long Received, long? Total, double BytesPerSecond);

/// <summary>Where the sha256 a downloaded file was checked against came from.</summary>
public enum Sha256Origin
{
    /// <summary>Nowhere: a direct URL whose spec entry pins no sha256; the file is not verified.</summary>
    None,
    /// <summary>Pinned in the spec (<c>sha256:</c>).</summary>
    Spec,
    /// <summary>Reported by the Hugging Face Hub for the file (<c>X-Linked-Etag</c>), not pinned in the spec.</summary>
    Hub,
}

/// <summary>A published checkpoint in the cache.</summary>
/// <param name="Path">The weights file.</param>
/// <param name="Folder">The folder holding it; for a <c>hf</c> or <c>open_clip</c> entry a complete folder that <c>ClipCheckpoint.Open</c> loads.</param>
/// <param name="Sha256">The sha256 the file was verified against (lower-case hex), or empty for <see cref="Sha256Origin.None"/>.</param>
/// <param name="Origin">Where <paramref name="Sha256"/> came from.</param>
/// <param name="FromCache">True when the file was already in the cache (and re-verified), false when it was just downloaded.</param>
/// <param name="Commit">The Hub's commit of the file (<c>X-Repo-Commit</c>) when it said, else null.</param>
/// <param name="Configs">The config files written from the spec beside the weights (none for other formats).</param>
/// <param name="Tokenizer">The tokenizer's vocabulary file downloaded with the weights (the entry's <c>tokenizer_file</c>, saved as the spec's <c>tokenizer.file</c>), or null.</param>
public sealed record DownloadedCheckpoint(string Path, string Folder, string Sha256, Sha256Origin Origin, bool FromCache, string? Commit, IReadOnlyList<string> Configs, string? Tokenizer = null)
{
    /// <summary>One phrase saying where the checksum came from, for people.</summary>
    public string Sha256Description => Origin switch
    {
        Sha256Origin.Spec => "sha256 pinned in the spec",
        Sha256Origin.Hub => "sha256 reported by the Hub (X-Linked-Etag), not pinned",
        _ => "no sha256 published: not verified",
    };
}

/// <summary>
/// Downloads a spec's published checkpoints (<see cref="ClipSpec.Pretrained"/>) into a cache folder:
/// into <c>&lt;file&gt;.partial</c> first, resuming it with an HTTP <c>Range</c> request after a dropped connection (or in a later run),
/// then verifying the sha256 and renaming the file into place. A file whose sha256 differs is deleted, never left in the cache.
/// </summary>
/// <remarks>
/// A Hugging Face Hub entry (<see cref="PretrainedSpec.IsHub"/>) is checked the way <c>huggingface_hub</c> checks it: a <c>HEAD</c> of the
/// resolve URL, without following the redirect, returns the file's sha256 in <c>X-Linked-Etag</c> (LFS files); the <c>GET</c> then follows
/// the redirect to the CDN. The spec's pinned sha256, when there is one, must agree with the Hub's; when the spec pins none, the Hub's is
/// used and stored beside the file (<c>&lt;file&gt;.download.json</c>) so that the cached file can be re-verified offline. Without either,
/// the download is refused. After a <c>hf</c> or <c>open_clip</c> download the configs are written from the spec, so the folder loads.
/// </remarks>
public sealed class ModelDownloader : IDisposable
{
    const int MaxRedirects = 10;
    /// <summary>The file beside a Hub download that records the URL, the sha256 it was verified against and the Hub's commit.</summary>
    public const string RecordSuffix = ".download.json";

    readonly HttpClient _http;
    readonly bool _ownsHttp;

    /// <param name="cacheDirectory">The cache folder; default <see cref="DefaultCacheDirectory"/>.</param>
    /// <param name="handler">
    /// The HTTP handler to use (tests pass their own); a default <see cref="SocketsHttpHandler"/> otherwise. It must not follow redirects
    /// itself (<see cref="SocketsHttpHandler.AllowAutoRedirect"/> false): the downloader reads the Hub's redirect and follows it.
    /// </param>
    /// <param name="urlBase">
    /// When set, every URL's scheme, host and port are replaced by this one's (its path is prepended), e.g. a mirror or a test server
    /// on 127.0.0.1. Explicit only: no environment variable changes where ClipGen downloads from. Redirect targets are not rewritten.
    /// </param>
    /// <param name="timeout">
    /// How long connecting, waiting for the response headers, or a stalled transfer may take before an attempt is abandoned
    /// (default <see cref="DefaultTimeout"/>); see <see cref="Timeout"/>.
    /// </param>
    public ModelDownloader(string? cacheDirectory = null, HttpMessageHandler? handler = null, Uri? urlBase = null, TimeSpan? timeout = null)
    {
        CacheDirectory = Path.GetFullPath(cacheDirectory ?? DefaultCacheDirectory);
        UrlBase = urlBase;
        Timeout = timeout ?? DefaultTimeout;
        if (Timeout <= TimeSpan.Zero || Timeout == System.Threading.Timeout.InfiniteTimeSpan)
            throw new ClipGenException($"the download timeout must be a positive time, not {Timeout}");
        _ownsHttp = true;
        _http = new HttpClient(handler ?? new SocketsHttpHandler { AutomaticDecompression = DecompressionMethods.None, AllowAutoRedirect = false, ConnectTimeout = Timeout }, disposeHandler: handler is null)
        {
            Timeout = System.Threading.Timeout.InfiniteTimeSpan,
        };
        _http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("ClipGen", typeof(ModelDownloader).Assembly.GetName().Version?.ToString() ?? "0"));
    }

    /// <summary><c>$CLIPGEN_CACHE</c>, else <c>$XDG_CACHE_HOME/clipgen</c>, else <c>~/.cache/clipgen</c> (the XDG default).</summary>
    public static string DefaultCacheDirectory => CacheFolders.Default;

    /// <summary>The cache folder.</summary>
    public string CacheDirectory { get; }

    /// <summary>The URL base override, if any.</summary>
    public Uri? UrlBase { get; }

    /// <summary>How many times a dropped transfer is resumed within one call (default 3).</summary>
    public int MaxAttempts { get; init; } = 3;

    /// <summary>The default <see cref="Timeout"/>: 30 s.</summary>
    public static TimeSpan DefaultTimeout { get; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long connecting, waiting for response headers, or one read may take; and the window over which the transfer must average
    /// at least <see cref="MinBytesPerSecond"/> (a server that drips a byte every few seconds is given up on, as curl's
    /// <c>--speed-limit</c>/<c>--speed-time</c> do). Each abandoned attempt is retried up to <see cref="MaxAttempts"/> times, resuming.
    /// </summary>
    public TimeSpan Timeout { get; }

    /// <summary>The slowest average transfer accepted over one <see cref="Timeout"/> window (default 1,024 bytes per second).</summary>
    public long MinBytesPerSecond { get; init; } = 1024;

    /// <summary>The longest a whole download may take, retries included (default: no limit; a slow but steady transfer goes on).</summary>
    public TimeSpan? MaxTime { get; init; }

    /// <summary>
    /// The most bytes a file may have; null (the default) derives it from the spec: 16 bytes per parameter (fp64 weights and an
    /// optimizer's two moments fit) plus 256 MiB. A server that announces or sends more is refused and the partial file deleted.
    /// </summary>
    public long? MaxBytes { get; init; }

    /// <summary>The size limit of <paramref name="spec"/>'s downloads: <see cref="MaxBytes"/>, else derived from the parameter count.</summary>
    public long SizeLimit(ClipSpec spec) => MaxBytes ?? checked(KeyTable.ParameterCount(spec) * 16 + (256L << 20));

    /// <summary>The published checkpoint of <paramref name="spec"/> from <paramref name="source"/> (default: the first one listed).</summary>
    public static PretrainedSpec Select(ClipSpec spec, string? source)
    {
        if (spec.Pretrained.Count == 0 && source is null)
            throw new ClipGenException($"spec '{spec.Name}' lists no published weights (no 'pretrained:' entries); the '-quickgelu' built-in specs carry OpenAI's");
        if (source is null) return spec.Pretrained[0];
        var found = spec.Pretrained.FirstOrDefault(p => string.Equals(p.Source, source, StringComparison.OrdinalIgnoreCase));
        if (found is not null) return found;
        // Wave 1 named a spec's Hugging Face weights 'hf'; the tags now follow open_clip, and 'hf' still picks the first Hub entry.
        if (string.Equals(source, "hf", StringComparison.OrdinalIgnoreCase) && spec.Pretrained.FirstOrDefault(p => p.IsHub) is { } hub) return hub;
        var why = string.Equals(source, "hf", StringComparison.OrdinalIgnoreCase) && spec.Vision.Kind != VisionKind.VisionTransformer
            ? " (Hugging Face's CLIPModel has no ResNet image tower, so ClipGen lists no Hugging Face weights for ResNet specs)"
            : "";
        var has = spec.Pretrained.Count == 0 ? "none (the spec lists no published weights)" : string.Join(", ", spec.Pretrained.Select(p => p.Source));
        throw new ClipGenException($"spec '{spec.Name}' has no '{source}' weights{why}; it has: {has}");
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
    /// Downloads the published checkpoint (or finds it in the cache, verified), writes the configs a <c>hf</c> or <c>open_clip</c>
    /// folder needs, and says where the file is and what it was verified against.
    /// </summary>
    /// <exception cref="ClipGenException">
    /// The server fails, the transfer cannot be completed after <see cref="MaxAttempts"/>, the sha256 differs, the Hub reports no sha256
    /// for an entry that pins none, or the Hub's sha256 differs from the pinned one.
    /// </exception>
    public async Task<DownloadedCheckpoint> DownloadAsync(ClipSpec spec, PretrainedSpec pretrained, Action<DownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        if (MaxTime is not { } maxTime) return await DownloadWithTokenizerAsync(spec, pretrained, progress, cancellationToken).ConfigureAwait(false);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(maxTime);
        try
        {
            return await DownloadWithTokenizerAsync(spec, pretrained, progress, deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            var kept = File.Exists(CachePath(spec, pretrained) + ".partial") ? " (the partial file is kept; run again to resume)" : "";
            throw new ClipGenException($"downloading {pretrained.Url} timed out: it took longer than the {maxTime.TotalSeconds:0.#} s allowed for the whole download{kept}");
        }
    }

    /// <summary>The weights, then the tokenizer's vocabulary file when the entry names one (saved as the spec's <c>tokenizer.file</c> beside them).</summary>
    async Task<DownloadedCheckpoint> DownloadWithTokenizerAsync(ClipSpec spec, PretrainedSpec pretrained, Action<DownloadProgress>? progress, CancellationToken cancellationToken)
    {
        CheckLayout(spec, pretrained);
        var weights = await DownloadCoreAsync(spec, pretrained, CachePath(spec, pretrained), SizeLimit(spec), requireSha: true, CheckCheckpoint, progress, cancellationToken).ConfigureAwait(false);
        weights = weights with { Configs = WriteConfigs(spec, pretrained, weights.Path) };
        if (pretrained.TokenizerFile.Length == 0) return weights;
        if (spec.Tokenizer.File.Length == 0)
            throw new ClipGenException($"pretrained '{pretrained.Source}' of spec '{spec.Name}' names tokenizer_file '{pretrained.TokenizerFile}', but the spec's tokenizer has no 'file' to save it as");
        // Small tokenizer files are not LFS files, so the Hub reports no sha256 for them: unpinned, they must at least load as the
        // spec's tokenizer before they are kept.
        var file = pretrained with { File = pretrained.TokenizerFile, Url = SpecResolver.HubUrl(pretrained.Repo, pretrained.Revision, pretrained.TokenizerFile), Sha256 = "" };
        var tokenizer = await DownloadCoreAsync(spec, file, Path.Combine(weights.Folder, spec.Tokenizer.File), MaxTokenizerBytes, requireSha: false,
            path => { _ = Text.TextTokenizers.Create(spec, path); }, progress, cancellationToken).ConfigureAwait(false);
        return weights with { Tokenizer = tokenizer.Path };
    }

    /// <summary>The largest tokenizer file downloaded: 64 MiB (Gemma's SentencePiece model is about 4 MiB).</summary>
    public long MaxTokenizerBytes { get; init; } = 64L << 20;

    static void CheckCheckpoint(string path)
    {
        using var _ = CheckpointReader.Open(path);
    }

    async Task<DownloadedCheckpoint> DownloadCoreAsync(ClipSpec spec, PretrainedSpec pretrained, string target, long maxBytes, bool requireSha,
        Action<string> checkWhole, Action<DownloadProgress>? progress, CancellationToken cancellationToken)
    {
        var folder = Path.GetDirectoryName(target)!;
        Directory.CreateDirectory(folder);
        var pinned = pretrained.Sha256.ToLowerInvariant();
        var record = pretrained.IsHub ? ReadRecord(target, pretrained.Url) : null;

        if (File.Exists(target))
        {
            // Re-verify offline against what is known: the pin, else the sha256 the Hub reported when the file was downloaded.
            var known = pinned.Length > 0 ? pinned : pretrained.IsHub ? record?.Sha256 : "";
            if (known == "")
                return Done(target, "", Sha256Origin.None, fromCache: true, hubCommit: null);
            if (known is null && !requireSha)
            {
                // An unverifiable file (a tokenizer the Hub has no sha256 for) is reused as long as it still loads.
                try { checkWhole(target); return Done(target, "", Sha256Origin.None, fromCache: true, hubCommit: null); }
                catch (ClipGenException) { File.Delete(target); }
            }
            if (known is not null)
            {
                if (await Sha256Async(target, cancellationToken).ConfigureAwait(false) == known)
                    return Done(target, known, pinned.Length > 0 ? Sha256Origin.Spec : Sha256Origin.Hub, fromCache: true, record?.Commit);
                File.Delete(target); // a damaged cache entry: fetch it again
                File.Delete(target + RecordSuffix);
            }
        }

        var url = Resolve(pretrained.Url);
        var expected = pinned;
        var origin = pinned.Length > 0 ? Sha256Origin.Spec : Sha256Origin.None;
        string? commit = null;
        if (pretrained.IsHub)
        {
            var hub = await RetryAsync(url, null, () => HeadAsync(url, cancellationToken), cancellationToken).ConfigureAwait(false);
            commit = hub.Commit;
            if (hub.Sha256 is { } reported)
            {
                if (pinned.Length > 0 && reported != pinned)
                    throw new ClipGenException($"spec '{spec.Name}' pins sha256 {pinned} for {pretrained.Repo}/{pretrained.File} (revision {pretrained.Revision}), "
                        + $"but the Hub reports {reported} for {url}; nothing was downloaded. Pin the revision the sha256 belongs to, or update the sha256");
                if (pinned.Length == 0) { expected = reported; origin = Sha256Origin.Hub; }
            }
            else if (pinned.Length == 0 && requireSha)
                throw new ClipGenException($"the Hub reported no sha256 for {url} ({hub.Why}) and spec '{spec.Name}' pins none, so the file cannot be verified; "
                    + $"nothing was downloaded. Pin it in the spec: 'sha256: <64 hex digits>' under pretrained '{pretrained.Source}'");

            if (File.Exists(target)) // downloaded earlier, but its record is missing or names another revision
            {
                if (await Sha256Async(target, cancellationToken).ConfigureAwait(false) == expected)
                {
                    WriteRecord(target, pretrained.Url, expected, origin, commit);
                    return Done(target, expected, origin, fromCache: true, commit);
                }
                File.Delete(target);
                File.Delete(target + RecordSuffix);
            }
        }

        var partial = target + ".partial";
        bool lengthKnown = false;
        await RetryAsync(url, partial, async () => { lengthKnown = await TransferAsync(url, partial, Path.GetFileName(target), maxBytes, progress, cancellationToken).ConfigureAwait(false); return true; }, cancellationToken).ConfigureAwait(false);

        if (expected.Length > 0)
        {
            var actual = await Sha256Async(partial, cancellationToken).ConfigureAwait(false);
            if (actual != expected)
            {
                File.Delete(partial);
                var said = origin == Sha256Origin.Hub ? $"the Hub reported (X-Linked-Etag) for spec '{spec.Name}'" : $"spec '{spec.Name}' says";
                throw new ClipGenException($"downloaded {url} but its sha256 is {actual}, not {expected} as {said}; the file was deleted");
            }
        }
        else
        {
            // Unverified (no sha256 anywhere): at least the file must be a whole checkpoint. A body the server ended by closing the
            // connection, without a Content-Length, cannot be told from a truncated one otherwise.
            try { checkWhole(partial); }
            catch (ClipGenException e)
            {
                File.Delete(partial);
                var why = lengthKnown ? "" : " The server sent no Content-Length, so a dropped connection looks like the end of the file.";
                throw new ClipGenException($"downloaded {url}, but it is not a complete {(requireSha ? "checkpoint" : "tokenizer file")} ({e.Message}); the file was deleted.{why} Pin its sha256 in spec '{spec.Name}' to verify it");
            }
        }
        File.Move(partial, target, overwrite: true);
        if (pretrained.IsHub && expected.Length > 0) WriteRecord(target, pretrained.Url, expected, origin, commit);
        return Done(target, expected, origin, fromCache: false, commit);

        DownloadedCheckpoint Done(string path, string sha, Sha256Origin from, bool fromCache, string? hubCommit) =>
            new(path, Path.GetDirectoryName(path)!, sha, from, fromCache, hubCommit, []);
    }

    /// <summary>Refuses, before any transfer, an entry whose downloaded file could not become a loadable folder.</summary>
    static void CheckLayout(ClipSpec spec, PretrainedSpec pretrained)
    {
        var fileName = Path.GetFileName(new Uri(pretrained.Url).AbsolutePath);
        if (pretrained.Format == "hf")
        {
            if (spec.Vision.Kind != VisionKind.VisionTransformer)
                throw new ClipGenException($"spec '{spec.Name}' is a ResNet, but pretrained '{pretrained.Source}' has format hf: Hugging Face's CLIPModel has no ResNet image tower");
            if (fileName is not ("model.safetensors" or "pytorch_model.bin"))
                throw new ClipGenException($"pretrained '{pretrained.Source}' of spec '{spec.Name}' has format hf, so its file must be model.safetensors or pytorch_model.bin (what a Hugging Face folder holds), not '{fileName}'");
        }
        if (pretrained.Format == "open_clip" && fileName is not ("open_clip_model.safetensors" or "open_clip_pytorch_model.bin"))
            throw new ClipGenException($"pretrained '{pretrained.Source}' of spec '{spec.Name}' has format open_clip, so its file must be open_clip_model.safetensors or open_clip_pytorch_model.bin (what an open_clip folder holds), not '{fileName}'");
    }

    /// <summary>Writes <c>config.json</c> + <c>preprocessor_config.json</c> (<c>hf</c>) or <c>open_clip_config.json</c> (<c>open_clip</c>) from the spec.</summary>
    static IReadOnlyList<string> WriteConfigs(ClipSpec spec, PretrainedSpec pretrained, string weights)
    {
        var folder = Path.GetDirectoryName(weights)!;
        switch (pretrained.Format)
        {
            case "hf":
            {
                TensorDType dtype;
                using (var source = CheckpointReader.Open(weights))
                    dtype = source.Entries.FirstOrDefault(e => e.Name == "vision_model.embeddings.patch_embedding.weight")?.DType ?? TensorDType.F32;
                return CheckpointConverter.WriteConfigs(spec, ConversionTarget.HuggingFace, folder, _ => dtype);
            }
            case "open_clip":
                return CheckpointConverter.WriteConfigs(spec, ConversionTarget.OpenClip, folder);
            default:
                return [];
        }
    }

    sealed record HubRecord(string Sha256, string? Commit);

    /// <summary>The record beside a Hub download, when it exists, is well-formed and names <paramref name="url"/>.</summary>
    static HubRecord? ReadRecord(string target, string url)
    {
        var file = target + RecordSuffix;
        if (!File.Exists(file)) return null;
        try
        {
            var json = JsonNode.Parse(File.ReadAllText(file)) as JsonObject;
            var sha = json?["sha256"]?.GetValue<string>();
            if (json?["url"]?.GetValue<string>() != url || sha is null || !IsSha256(sha)) return null;
            return new HubRecord(sha, json["commit"]?.GetValue<string>());
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            return null; // unreadable: verify against the Hub again
        }
    }

    static void WriteRecord(string target, string url, string sha256, Sha256Origin origin, string? commit)
    {
        var json = new JsonObject
        {
            ["url"] = url,
            ["sha256"] = sha256,
            ["sha256_origin"] = origin == Sha256Origin.Spec ? "spec" : "hub",
            ["commit"] = commit,
        };
        var file = target + RecordSuffix;
        var tmp = file + ".tmp-" + Environment.ProcessId;
        File.WriteAllText(tmp, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        File.Move(tmp, file, overwrite: true);
    }

    static bool IsSha256(string s) => s.Length == 64 && s.All(char.IsAsciiHexDigitLower);

    /// <summary>What the Hub says about a file: its sha256 (LFS files only), its commit, and why there is no sha256 when there is none.</summary>
    sealed record HubFileInfo(string? Sha256, string? Commit, string Why);

    /// <summary>
    /// <c>HEAD</c> of a resolve URL without following the redirect to the CDN (its response carries <c>X-Linked-Etag</c>).
    /// Redirects within the Hub (a renamed repository) are followed, as <c>huggingface_hub</c> does.
    /// </summary>
    async Task<HubFileInfo> HeadAsync(Uri url, CancellationToken cancellationToken)
    {
        var current = url;
        for (int hop = 0; ; hop++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Head, current);
            using var response = await SendAsync(request, cancellationToken).ConfigureAwait(false);
            var commit = Header(response, "X-Repo-Commit");
            var linked = Header(response, "X-Linked-Etag");
            if (linked is not null)
            {
                var sha = Unquote(linked).ToLowerInvariant();
                return IsSha256(sha) ? new HubFileInfo(sha, commit, "")
                    : new HubFileInfo(null, commit, $"its X-Linked-Etag '{linked}' is not a sha256");
            }
            if (IsRedirect(response.StatusCode) && RedirectTarget(current, response) is { } next)
            {
                if (next.Authority != current.Authority)
                    return new HubFileInfo(null, commit, $"it redirects to {next.Authority} without an X-Linked-Etag");
                if (hop >= MaxRedirects) throw new ClipGenException($"more than {MaxRedirects} redirects from {url}");
                current = next;
                continue;
            }
            ThrowUnlessSuccess(response, current);
            var etag = Header(response, "ETag");
            return new HubFileInfo(null, commit, etag is null ? "no X-Linked-Etag, no ETag" : $"no X-Linked-Etag; its ETag {etag} is a git blob id, so the file is not stored in LFS");
        }
    }

    /// <summary>Sends a request and waits at most <see cref="Timeout"/> for the response headers.</summary>
    async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        using var headers = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        headers.CancelAfter(Timeout);
        try
        {
            return await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, headers.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"timed out: no response from {request.RequestUri?.Authority} within {Timeout.TotalSeconds:0.#} s");
        }
        catch (HttpRequestException e) when (e.InnerException is OperationCanceledException or TimeoutException && !cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"timed out connecting to {request.RequestUri?.Authority} ({Timeout.TotalSeconds:0.#} s)", e);
        }
    }

    static bool IsRedirect(HttpStatusCode code) => (int)code is 301 or 302 or 303 or 307 or 308;

    static Uri? RedirectTarget(Uri current, HttpResponseMessage response)
    {
        if (response.Headers.Location is not { } location) return null;
        var next = location.IsAbsoluteUri ? location : new Uri(current, location);
        if (next.Scheme != Uri.UriSchemeHttp && next.Scheme != Uri.UriSchemeHttps)
            throw new ClipGenException($"{current} redirects to {next}, which is not http(s)");
        if (current.Scheme == Uri.UriSchemeHttps && next.Scheme == Uri.UriSchemeHttp)
            throw new ClipGenException($"{current} redirects to {next}: refusing to leave https");
        return next;
    }

    static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? values.FirstOrDefault()
        : response.Content.Headers.TryGetValues(name, out var content) ? content.FirstOrDefault() : null;

    static string Unquote(string etag)
    {
        var s = etag.Trim();
        if (s.StartsWith("W/", StringComparison.Ordinal)) s = s[2..];
        return s.Trim('"');
    }

    static void ThrowUnlessSuccess(HttpResponseMessage response, Uri url)
    {
        if (response.IsSuccessStatusCode) return;
        var message = $"the server answered {(int)response.StatusCode} {response.ReasonPhrase} for {url}";
        if ((int)response.StatusCode >= 500) throw new HttpRequestException(message);
        throw new ClipGenException(message);
    }

    /// <summary>Runs <paramref name="step"/> up to <see cref="MaxAttempts"/> times while it fails in a way that may pass (connection, timeout, 5xx).</summary>
    async Task<T> RetryAsync<T>(Uri url, string? partial, Func<Task<T>> step, CancellationToken cancellationToken)
    {
        Exception? last = null;
        for (int attempt = 1; attempt <= Math.Max(1, MaxAttempts); attempt++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            try
            {
                return await step().ConfigureAwait(false);
            }
            catch (Exception e) when (e is HttpRequestException or IOException or TimeoutException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
            {
                last = e; // keep the .partial file and resume it
            }
        }
        var kept = partial is not null && File.Exists(partial) ? $" (the partial file {partial} is kept; run again to resume)" : "";
        throw new ClipGenException($"downloading {url} failed after {Math.Max(1, MaxAttempts)} attempt(s): {last!.Message.ReplaceLineEndings(" ")}{kept}", last);
    }

    Uri Resolve(string url)
    {
        var uri = new Uri(url, UriKind.Absolute);
        if (UrlBase is null) return uri;
        var basePath = UrlBase.AbsolutePath.TrimEnd('/');
        return new UriBuilder(UrlBase.Scheme, UrlBase.Host, UrlBase.Port, basePath + uri.AbsolutePath) { Query = uri.Query.TrimStart('?') }.Uri;
    }

    /// <summary>One attempt; true when the server said how long the file is (Content-Length, Content-Range or chunked framing).</summary>
    async Task<bool> TransferAsync(Uri url, string partial, string displayName, long maxBytes, Action<DownloadProgress>? progress, CancellationToken cancellationToken)
    {
        long have = File.Exists(partial) ? new FileInfo(partial).Length : 0;
        HttpResponseMessage? response = null;
        try
        {
            // Follow redirects here (the Hub's resolve URL to its CDN), sending the same Range to every hop.
            var current = url;
            for (int hop = 0; ; hop++)
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, current);
                if (have > 0) request.Headers.Range = new RangeHeaderValue(have, null);
                response = await SendAsync(request, cancellationToken).ConfigureAwait(false);
                if (!IsRedirect(response.StatusCode) || RedirectTarget(current, response) is not { } next) break;
                if (hop >= MaxRedirects) throw new ClipGenException($"more than {MaxRedirects} redirects from {url}");
                response.Dispose();
                response = null;
                current = next;
            }

            if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable && have > 0)
                return true; // the partial file is already whole; the sha256 decides
            ThrowUnlessSuccess(response, current);
            return await ReceiveAsync(response, partial, have, displayName, maxBytes, progress, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            response?.Dispose();
        }
    }

    async Task<bool> ReceiveAsync(HttpResponseMessage response, string partial, long have, string displayName, long maxBytes, Action<DownloadProgress>? progress, CancellationToken cancellationToken)
    {
        bool append = have > 0 && response.StatusCode == HttpStatusCode.PartialContent;
        if (append && response.Content.Headers.ContentRange is { From: { } from } && from != have)
            throw new IOException($"the server resumed at byte {from}, not {have}");
        if (!append) have = 0;
        long? total = response.Content.Headers.ContentLength is { } length ? length + have : null;
        if (response.Content.Headers.ContentRange?.Length is { } full) total = full;
        if (total > maxBytes)
        {
            File.Delete(partial);
            throw new ClipGenException($"{response.RequestMessage?.RequestUri} is {total:N0} bytes, over the {maxBytes:N0} bytes a checkpoint of this spec can have (ModelDownloader.MaxBytes raises it); nothing was kept");
        }
        bool lengthKnown = total is not null || response.Headers.TransferEncodingChunked == true;

        await using var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        await using var file = new FileStream(partial, append ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true);
        var buffer = new byte[1 << 16];
        var clock = Stopwatch.StartNew();
        long received = have, startedAt = have;
        var lastReport = TimeSpan.Zero;
        // The low-speed window: at least MinBytesPerSecond on average over every Timeout.
        var windowStart = clock.Elapsed;
        long windowBytes = 0;
        long windowNeed = (long)(MinBytesPerSecond * Timeout.TotalSeconds);
        while (true)
        {
            using var stall = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            stall.CancelAfter(Timeout);
            int n;
            try { n = await body.ReadAsync(buffer, stall.Token).ConfigureAwait(false); }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested) { throw new TimeoutException($"timed out: no data for {Timeout.TotalSeconds:0.#} s"); }
            if (n == 0) break;
            if (received + n > maxBytes)
            {
                await file.DisposeAsync().ConfigureAwait(false);
                File.Delete(partial);
                throw new ClipGenException($"{response.RequestMessage?.RequestUri} sent more than the {maxBytes:N0} bytes a checkpoint of this spec can have (an endless body? ModelDownloader.MaxBytes raises the limit); the partial file was deleted");
            }
            await file.WriteAsync(buffer.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
            received += n;
            windowBytes += n;
            if (clock.Elapsed - windowStart >= Timeout)
            {
                if (windowBytes < windowNeed)
                    throw new TimeoutException($"timed out: the transfer stalled ({windowBytes:N0} bytes in {(clock.Elapsed - windowStart).TotalSeconds:0} s, below {MinBytesPerSecond:N0} bytes per second)");
                windowStart = clock.Elapsed;
                windowBytes = 0;
            }
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
        if (total is { } u && received > u)
            throw new IOException($"the server sent {received} bytes, more than the {u} it announced");
        return lengthKnown;
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
