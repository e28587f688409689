using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using ClipGen.Applications;
using Xunit;

namespace ClipGen.Tests.Applications;

public class VocabularyTests
{
    static string EmptyWeightsFolder()
    {
        var dir = TestUtil.TempDir();
        var w = Path.Combine(dir, "model.safetensors");
        File.Copy(AppFixtures.Weights("openai/tiny-vit"), w);
        return w;
    }

    [Fact]
    public void Order_is_explicit_then_weights_folder_then_cache()
    {
        if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CLIPGEN_VOCAB"))) return; // the variable would win
        var cache = TestUtil.TempDir();
        var weights = EmptyWeightsFolder();
        Assert.Equal(AppFixtures.Vocab, Vocabulary.Resolve(AppFixtures.Vocab, weights, cache, allowDownload: false));

        // Nothing anywhere, downloads off: a one-line error saying what to do.
        var e = Assert.Throws<ClipGenException>(() => Vocabulary.Resolve(null, weights, cache, allowDownload: false));
        Assert.Contains("give a vocabulary file", e.Message);
        Assert.DoesNotContain("--", e.Message); // the CLI adds its flag (CliErrorHints)
        Assert.Equal(ClipGenSetting.Vocabulary, e.Setting);

        // A pre-seeded cache.
        File.Copy(AppFixtures.Vocab, Path.Combine(cache, Vocabulary.OpenAIFileName));
        Assert.Equal(Path.Combine(cache, Vocabulary.OpenAIFileName), Vocabulary.Resolve(null, weights, cache, allowDownload: false));

        // Hugging Face's files beside the weights come before the cache.
        var folder = Path.GetDirectoryName(weights)!;
        File.Copy(Fixtures.Path_("vocab", "hf", "vocab.json"), Path.Combine(folder, "vocab.json"));
        File.Copy(Fixtures.Path_("vocab", "hf", "merges.txt"), Path.Combine(folder, "merges.txt"));
        Assert.Equal(Path.Combine(folder, "vocab.json"), Vocabulary.Resolve(null, weights, cache, allowDownload: false));
    }

    /// <summary>Serves one file over HTTP on 127.0.0.1 (never the internet).</summary>
    sealed class LocalServer : IDisposable
    {
        readonly HttpListener _listener = new();
        public int Requests;
        public Uri Url { get; }

        public LocalServer(byte[] body)
        {
            var probe = new TcpListener(IPAddress.Loopback, 0);
            probe.Start();
            int port = ((IPEndPoint)probe.LocalEndpoint).Port;
            probe.Stop();
            _listener.Prefixes.Add($"http://127.0.0.1:{port}/");
            _listener.Start();
            Url = new Uri($"http://127.0.0.1:{port}/clip/{Vocabulary.OpenAIFileName}");
            _ = Task.Run(async () =>
            {
                while (_listener.IsListening)
                {
                    HttpListenerContext ctx;
                    try { ctx = await _listener.GetContextAsync(); } catch (Exception) { return; }
                    Interlocked.Increment(ref Requests);
                    ctx.Response.ContentLength64 = body.Length;
                    await ctx.Response.OutputStream.WriteAsync(body);
                    ctx.Response.Close();
                }
            });
        }

        public void Dispose() => _listener.Close();
    }

    [Fact]
    public void First_use_downloads_checks_the_sha256_and_caches()
    {
        if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CLIPGEN_VOCAB"))) return;
        using var server = new LocalServer(File.ReadAllBytes(AppFixtures.Vocab));
        var cache = TestUtil.TempDir();
        var weights = EmptyWeightsFolder();
        var path = Vocabulary.Resolve(null, weights, cache, allowDownload: true, downloadUrl: server.Url);
        Assert.Equal(Path.Combine(cache, Vocabulary.OpenAIFileName), path);
        Assert.Equal(File.ReadAllBytes(AppFixtures.Vocab), File.ReadAllBytes(path));
        Assert.Equal(1, server.Requests);
        Vocabulary.Resolve(null, weights, cache, allowDownload: true, downloadUrl: server.Url);
        Assert.Equal(1, server.Requests); // cached
        Assert.Single(Directory.GetFiles(cache)); // no temporary files left
    }

    [Fact]
    public void A_download_with_the_wrong_sha256_is_not_kept()
    {
        using var server = new LocalServer("not the vocabulary"u8.ToArray());
        var cache = TestUtil.TempDir();
        var e = Assert.Throws<ClipGenException>(() => Vocabulary.DownloadVerified(server.Url, Path.Combine(cache, Vocabulary.OpenAIFileName), Vocabulary.OpenAISha256));
        Assert.Contains("sha256", e.Message);
        Assert.Empty(Directory.GetFiles(cache));
    }

    [Fact]
    public async Task Classify_cli_downloads_into_the_cache_on_first_use()
    {
        using var server = new LocalServer(File.ReadAllBytes(AppFixtures.Vocab));
        var cache = TestUtil.TempDir();
        var weights = EmptyWeightsFolder();
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "ClipGen.Cli.dll"), "classify", "--model", Path.Combine(AppContext.BaseDirectory, "specs", "tiny-vit.yaml"), "--weights", weights,
            "--image", AppFixtures.Images[0], "--labels", "a dog,a cat", "--json" })
            psi.ArgumentList.Add(a);
        psi.Environment.Remove("CLIPGEN_VOCAB");
        psi.Environment["CLIPGEN_CACHE"] = cache;
        psi.Environment["CLIPGEN_VOCAB_URL"] = server.Url.ToString();
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var output = await p.StandardOutput.ReadToEndAsync();
        await p.WaitForExitAsync();
        Assert.True(p.ExitCode == 0, await err);
        Assert.Contains("\"a dog\"", output);
        Assert.Equal(1, server.Requests);
        Assert.True(File.Exists(Path.Combine(cache, Vocabulary.OpenAIFileName)));
    }
}
