using ClipGen.Downloads;
using ClipGen.Modeling;
using ClipGen.Specs;
using ClipGen.Tests.Checkpoints;
using Xunit;

namespace ClipGen.Tests.Hardening;

/// <summary>Defect 11 of issue 12: downloads give up on silent, dripping, endless and truncated servers, with a "timed out" or size error.</summary>
public class DownloadHardeningTests
{
    static readonly ClipSpec Spec = ModelRegistry.Get("demo-tiny").Spec;
    static readonly PretrainedSpec Unpinned = new() { Source = "web", Url = "https://weights.example/demo/model.pt", Format = "torch" };
    static byte[] Checkpoint => File.ReadAllBytes(Fixtures.Path_("reference", "openai", "tiny-vit", "openai_state_dict.pt"));

    static async Task<ClipGenException> Fails(HostileHttpServer server, TempFolder cache, TimeSpan timeout, Func<ModelDownloader, ModelDownloader>? configure = null)
    {
        using var downloader = (configure ?? (d => d))(new ModelDownloader(cache.Path, urlBase: server.BaseUrl, timeout: timeout) { MaxAttempts = 2 });
        var e = await Assert.ThrowsAsync<ClipGenException>(() => downloader.DownloadAsync(Spec, Unpinned));
        Assert.DoesNotContain('\n', e.Message);
        Assert.False(File.Exists(downloader.CachePath(Spec, Unpinned)), "a failed download was cached");
        return e;
    }

    [Fact]
    public async Task A_server_that_never_answers_times_out()
    {
        using var server = new HostileHttpServer(HostileServerMode.Silent);
        using var cache = new TempFolder();
        var e = await Fails(server, cache, TimeSpan.FromSeconds(1));
        Assert.Contains("failed after 2 attempt(s): timed out: no response", e.Message);
        Assert.Equal(2, server.Connections);
    }

    [Fact]
    public async Task A_drip_of_a_byte_at_a_time_times_out()
    {
        using var server = new HostileHttpServer(HostileServerMode.Drip, dripInterval: TimeSpan.FromMilliseconds(200));
        using var cache = new TempFolder();
        var e = await Fails(server, cache, TimeSpan.FromSeconds(1));
        Assert.Contains("timed out: the transfer stalled", e.Message);
        Assert.Contains("below 1,024 bytes per second", e.Message);
    }

    [Fact]
    public async Task The_whole_download_has_a_deadline()
    {
        using var server = new HostileHttpServer(HostileServerMode.Drip, dripInterval: TimeSpan.FromMilliseconds(100));
        using var cache = new TempFolder();
        var e = await Fails(server, cache, TimeSpan.FromSeconds(30), d => new ModelDownloader(d.CacheDirectory, urlBase: d.UrlBase) { MaxTime = TimeSpan.FromSeconds(1.5) });
        Assert.Contains("timed out: it took longer than the 1.5 s allowed for the whole download", e.Message);
    }

    [Fact]
    public async Task An_endless_body_is_cut_at_the_size_limit_and_nothing_is_kept()
    {
        using var server = new HostileHttpServer(HostileServerMode.Endless);
        using var cache = new TempFolder();
        var e = await Fails(server, cache, TimeSpan.FromSeconds(5), d => new ModelDownloader(d.CacheDirectory, urlBase: d.UrlBase) { MaxBytes = 3 << 20 });
        Assert.Contains("sent more than the 3,145,728 bytes", e.Message);
        Assert.Empty(Directory.GetFiles(cache.Path, "*", SearchOption.AllDirectories));
    }

    [Fact]
    public void The_default_size_limit_comes_from_the_spec()
    {
        using var downloader = new ModelDownloader(Path.GetTempPath());
        Assert.Equal(KeyTable.ParameterCount(Spec) * 16 + (256L << 20), downloader.SizeLimit(Spec));
    }

    [Fact]
    public async Task An_unpinned_body_cut_short_without_a_length_is_not_cached()
    {
        using var server = new HostileHttpServer(HostileServerMode.TruncatedNoLength, Checkpoint);
        using var cache = new TempFolder();
        var e = await Fails(server, cache, TimeSpan.FromSeconds(5));
        Assert.Contains("is not a complete checkpoint", e.Message);
        Assert.Contains("sent no Content-Length", e.Message);
        Assert.Empty(Directory.GetFiles(cache.Path, "*", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task An_unpinned_whole_body_without_a_length_is_checked_and_cached()
    {
        using var server = new HostileHttpServer(HostileServerMode.WholeNoLength, Checkpoint);
        using var cache = new TempFolder();
        using var downloader = new ModelDownloader(cache.Path, urlBase: server.BaseUrl, timeout: TimeSpan.FromSeconds(5));
        var result = await downloader.DownloadAsync(Spec, Unpinned);
        Assert.Equal(Checkpoint, File.ReadAllBytes(result.Path));
        Assert.Equal(Sha256Origin.None, result.Origin);
    }

    [Fact]
    public void The_cli_takes_a_timeout_and_says_that_it_timed_out()
    {
        using var server = new HostileHttpServer(HostileServerMode.Silent);
        using var cache = new TempFolder();
        var spec = cache.File("demo-web.yaml");
        File.WriteAllText(spec, HostileCorpus.UnpinnedSpec(HostileCorpus.ValidSpec(Fixtures.RepoRoot)));
        var (code, stdout, err) = TestUtil.Cli("download", spec, "--cache", cache.Path, "--url-base", server.BaseUrl.ToString(), "--timeout", "0.5", "--quiet");
        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        Assert.Contains("timed out", err);
        (code, _, err) = TestUtil.Cli("download", spec, "--timeout", "0");
        Assert.Equal(2, code);
        Assert.Contains("--timeout takes a number of seconds greater than 0", err);
    }
}
