using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using ClipGen.Downloads;
using ClipGen.Modeling;
using ClipGen.Specs;
using Xunit;

namespace ClipGen.Tests.Checkpoints;

/// <summary>
/// How <see cref="LocalHttpServer"/> emulates the Hugging Face Hub: a <c>HEAD</c> of a resolve URL answers <c>302</c> to
/// <c>/cdn/&lt;name&gt;</c> with <c>X-Linked-Etag: "&lt;sha256&gt;"</c>, <c>X-Linked-Size</c> and <c>X-Repo-Commit</c> (an LFS file);
/// a <c>GET</c> of it answers the same redirect, and the CDN path serves the body with <c>Range</c>. With <see cref="LinkedEtag"/> null the
/// file is a plain git file: <c>200</c> with only a git <c>ETag</c>, served directly.
/// </summary>
sealed record HubEmulation(string? LinkedEtag, string Commit = "0123456789abcdef0123456789abcdef01234567");

/// <summary>
/// A tiny HTTP/1.1 server on 127.0.0.1 for the download tests: serves one body, honours <c>Range: bytes=N-</c>, and can
/// drop the first connection after some bytes. With a <see cref="HubEmulation"/> it answers like the Hugging Face Hub.
/// Bounded: it stops with the test.
/// </summary>
sealed class LocalHttpServer : IDisposable
{
    readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    readonly CancellationTokenSource _stop = new();
    readonly Task _loop;
    readonly byte[] _body;
    readonly HubEmulation? _hub;
    readonly IReadOnlyDictionary<string, byte[]> _gitFiles;
    int _dropFirstAfter;

    /// <param name="gitFiles">With a Hub: files served as plain git files (no LFS, no sha256), by file name; everything else is <paramref name="body"/>.</param>
    public LocalHttpServer(byte[] body, int dropFirstAfter = -1, HubEmulation? hub = null, IReadOnlyDictionary<string, byte[]>? gitFiles = null)
    {
        _body = body;
        _gitFiles = gitFiles ?? new Dictionary<string, byte[]>();
        _dropFirstAfter = dropFirstAfter;
        _hub = hub;
        _listener.Start();
        _loop = Task.Run(LoopAsync);
    }

    public Uri BaseUrl => new($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/");
    public List<string> Requests { get; } = new();

    async Task LoopAsync()
    {
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                using var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                await ServeAsync(client);
            }
        }
        catch (OperationCanceledException) { }
        catch (ObjectDisposedException) { }
        catch (SocketException) { }
    }

    async Task ServeAsync(TcpClient client)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        timeout.CancelAfter(TimeSpan.FromSeconds(20));
        var stream = client.GetStream();
        var head = new StringBuilder();
        var one = new byte[1];
        while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
        {
            if (await stream.ReadAsync(one, timeout.Token) == 0) return;
            head.Append((char)one[0]);
        }
        var lines = head.ToString().Split("\r\n");
        var range = lines.FirstOrDefault(l => l.StartsWith("Range:", StringComparison.OrdinalIgnoreCase));
        lock (Requests) Requests.Add(lines[0] + (range is null ? "" : " " + range));
        var method = lines[0].Split(' ')[0];
        var path = lines[0].Split(' ')[1];

        if (_hub is not null && _gitFiles.TryGetValue(Path.GetFileName(path), out var git))
        {
            await WriteAsync(stream, $"HTTP/1.1 200 OK\r\nETag: \"5d41402abc4b2a76b9719d911017c592aaaabbbb\"\r\nX-Repo-Commit: {_hub.Commit}\r\n"
                + $"Content-Length: {git.Length}\r\nConnection: close\r\n\r\n", timeout.Token);
            if (method != "HEAD") { await stream.WriteAsync(git, timeout.Token); await stream.FlushAsync(timeout.Token); }
            return;
        }
        if (_hub is not null && !path.StartsWith("/cdn/", StringComparison.Ordinal))
        {
            string hubHeaders = $"X-Repo-Commit: {_hub.Commit}\r\n";
            if (_hub.LinkedEtag is { } etag)
            {
                // An LFS file: the Hub redirects to its CDN, and says the file's sha256 and size on the redirect.
                var location = new Uri(BaseUrl, "cdn/" + etag + "/" + Path.GetFileName(path));
                await WriteAsync(stream, $"HTTP/1.1 302 Found\r\nLocation: {location}\r\nX-Linked-Etag: \"{etag}\"\r\nX-Linked-Size: {_body.Length}\r\n"
                    + $"ETag: \"{etag}\"\r\n{hubHeaders}Content-Length: 0\r\nConnection: close\r\n\r\n", timeout.Token);
                return;
            }
            if (method == "HEAD")
            {
                // A plain git file: only the git blob id as ETag.
                await WriteAsync(stream, $"HTTP/1.1 200 OK\r\nETag: \"5d41402abc4b2a76b9719d911017c592aaaabbbb\"\r\n{hubHeaders}Content-Length: {_body.Length}\r\nConnection: close\r\n\r\n", timeout.Token);
                return;
            }
        }
        if (method == "HEAD")
        {
            await WriteAsync(stream, $"HTTP/1.1 200 OK\r\nContent-Length: {_body.Length}\r\nConnection: close\r\n\r\n", timeout.Token);
            return;
        }

        long from = 0;
        if (range is not null) from = long.Parse(range.Split('=')[1].TrimEnd('-').Split('-')[0]);
        string status = from > 0 ? "206 Partial Content" : "200 OK";
        var headers = $"HTTP/1.1 {status}\r\nContent-Length: {_body.Length - from}\r\nConnection: close\r\n"
            + (from > 0 ? $"Content-Range: bytes {from}-{_body.Length - 1}/{_body.Length}\r\n" : "") + "\r\n";
        await WriteAsync(stream, headers, timeout.Token);
        int count = _body.Length - (int)from;
        var drop = Interlocked.Exchange(ref _dropFirstAfter, -1);
        if (drop >= 0) count = Math.Min(count, drop);
        await stream.WriteAsync(_body.AsMemory((int)from, count), timeout.Token);
        await stream.FlushAsync(timeout.Token);
        if (drop >= 0) client.Client.LingerState = new LingerOption(true, 0); // a reset, as a dropped connection
    }

    static async Task WriteAsync(NetworkStream stream, string text, CancellationToken cancellationToken)
    {
        await stream.WriteAsync(Encoding.ASCII.GetBytes(text), cancellationToken);
        await stream.FlushAsync(cancellationToken);
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        try { _loop.Wait(TimeSpan.FromSeconds(5)); } catch (AggregateException) { }
    }
}

public class DownloadTests
{
    static readonly byte[] Body = Enumerable.Range(0, 300_000).Select(i => (byte)(i * 7 + i / 1000)).ToArray();

    static (ClipSpec Spec, PretrainedSpec Pretrained) Spec(byte[] body) =>
        (ModelRegistry.Get("tiny-vit").Spec, new PretrainedSpec
        {
            Source = "openai",
            Url = "https://openaipublic.example/clip/models/abc/Tiny.pt",
            Sha256 = Convert.ToHexStringLower(SHA256.HashData(body)),
            Format = "torchscript",
        });

    [Fact]
    public async Task Downloads_verifies_and_caches()
    {
        using var server = new LocalHttpServer(Body);
        using var temp = new TempFolder();
        var (spec, pretrained) = Spec(Body);
        using var downloader = new ModelDownloader(temp.Path, urlBase: server.BaseUrl);
        var seen = new List<DownloadProgress>();
        var result = await downloader.DownloadAsync(spec, pretrained, seen.Add);
        var path = result.Path;
        Assert.Equal(Sha256Origin.Spec, result.Origin);
        Assert.False(result.FromCache);
        Assert.Empty(result.Configs);
        Assert.Equal(Body, File.ReadAllBytes(path));
        Assert.Equal(Path.Combine(temp.Path, "tiny-vit", "openai", "Tiny.pt"), path);
        Assert.Equal("GET /clip/models/abc/Tiny.pt HTTP/1.1", Assert.Single(server.Requests));
        Assert.Equal(Body.Length, seen[^1].Received);
        Assert.Equal(Body.Length, seen[^1].Total);
        Assert.False(File.Exists(path + ".partial"));

        // A second call finds it in the cache.
        var cached = await downloader.DownloadAsync(spec, pretrained);
        Assert.Equal(path, cached.Path);
        Assert.True(cached.FromCache);
        Assert.Single(server.Requests);
    }

    [Fact]
    public async Task A_corrupted_file_is_an_error_and_leaves_nothing_in_the_cache()
    {
        var corrupted = Body.ToArray();
        corrupted[12345] ^= 0xFF;
        using var server = new LocalHttpServer(corrupted);
        using var temp = new TempFolder();
        var (spec, pretrained) = Spec(Body);
        using var downloader = new ModelDownloader(temp.Path, urlBase: server.BaseUrl);
        var error = await Assert.ThrowsAsync<ClipGenException>(() => downloader.DownloadAsync(spec, pretrained));
        Assert.Contains("sha256", error.Message);
        Assert.Contains("deleted", error.Message);
        Assert.Empty(Directory.GetFiles(temp.Path, "*", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task A_dropped_connection_is_resumed_with_a_range_request()
    {
        using var server = new LocalHttpServer(Body, dropFirstAfter: 100_000);
        using var temp = new TempFolder();
        var (spec, pretrained) = Spec(Body);
        using var downloader = new ModelDownloader(temp.Path, urlBase: server.BaseUrl);
        var path = (await downloader.DownloadAsync(spec, pretrained)).Path;
        Assert.Equal(Body, File.ReadAllBytes(path));
        Assert.Equal(2, server.Requests.Count);
        Assert.DoesNotContain("Range", server.Requests[0]);
        Assert.Matches(@"Range: bytes=\d+-$", server.Requests[1]);
        var resumedAt = long.Parse(server.Requests[1].Split('=')[1].TrimEnd('-'));
        Assert.InRange(resumedAt, 1, 100_000);
    }

    [Fact]
    public async Task A_partial_file_from_an_earlier_run_is_resumed()
    {
        using var server = new LocalHttpServer(Body);
        using var temp = new TempFolder();
        var (spec, pretrained) = Spec(Body);
        using var downloader = new ModelDownloader(temp.Path, urlBase: server.BaseUrl);
        var target = downloader.CachePath(spec, pretrained);
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        File.WriteAllBytes(target + ".partial", Body[..123_456]);
        var path = (await downloader.DownloadAsync(spec, pretrained)).Path;
        Assert.Equal(Body, File.ReadAllBytes(path));
        Assert.Equal("GET /clip/models/abc/Tiny.pt HTTP/1.1 Range: bytes=123456-", Assert.Single(server.Requests));
    }

    [Fact]
    public void Cli_download_prints_the_path_and_refuses_specs_without_weights()
    {
        using var temp = new TempFolder();
        var (code, _, err) = TestUtil.Cli("download", "tiny-vit", "--cache", temp.Path);
        Assert.Equal(2, code);
        Assert.Contains("lists no published weights", err);
        (code, _, err) = TestUtil.Cli("download", "ViT-B-32-quickgelu", "--source", "laion", "--cache", temp.Path);
        Assert.Equal(2, code);
        Assert.Contains("has no 'laion' weights; it has: openai, hf", err);

        // The real spec's URL, served by the local server (its sha256 will not match this body: the error, and nothing cached).
        using var server = new LocalHttpServer(Body);
        (code, var output, err) = TestUtil.Cli("download", "ViT-B-32-quickgelu", "--cache", temp.Path, "--url-base", server.BaseUrl.ToString());
        Assert.Equal(2, code);
        Assert.Equal("", output);
        Assert.Contains("sha256", err);
        Assert.StartsWith("GET /clip/models/40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt", Assert.Single(server.Requests));
        Assert.Empty(Directory.GetFiles(temp.Path, "*", SearchOption.AllDirectories));
    }
}
