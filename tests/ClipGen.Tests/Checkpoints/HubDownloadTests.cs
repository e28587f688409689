using System.Security.Cryptography;
using ClipGen.Applications;
using ClipGen.Backends;
using ClipGen.Checkpoints;
using ClipGen.Downloads;
using ClipGen.Modeling;
using ClipGen.Specs;
using Xunit;

namespace ClipGen.Tests.Checkpoints;

/// <summary>
/// <c>pretrained</c> entries on the Hugging Face Hub (<c>repo</c> + <c>file</c>), downloaded from a local server that answers like the Hub:
/// the sha256 comes from the pin or from <c>X-Linked-Etag</c> on the un-followed redirect, the body from the CDN it redirects to.
/// </summary>
public class HubDownloadTests
{
    static readonly byte[] Body = Enumerable.Range(0, 300_000).Select(i => (byte)(i * 13 + i / 777)).ToArray();
    static string Sha(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    static PretrainedSpec Hub(string file = "weights.bin", string format = "torch", string sha256 = "", string repo = "test/tiny", string revision = "main") => new()
    {
        Source = "hf", Repo = repo, File = file, Revision = revision, Url = SpecResolver.HubUrl(repo, revision, file), Sha256 = sha256, Format = format,
    };

    static ClipSpec TinyVit => ModelRegistry.Get("tiny-vit").Spec;

    static string[] Files(string folder) => Directory.GetFiles(folder, "*", SearchOption.AllDirectories);

    [Fact]
    public async Task Downloads_verified_against_the_sha256_the_Hub_reports_and_re_verifies_the_cache_offline()
    {
        var sha = Sha(Body);
        using var server = new LocalHttpServer(Body, hub: new HubEmulation(sha));
        using var temp = new TempFolder();
        using var downloader = new ModelDownloader(temp.Path, urlBase: server.BaseUrl);
        var result = await downloader.DownloadAsync(TinyVit, Hub());
        Assert.Equal(Body, File.ReadAllBytes(result.Path));
        Assert.Equal(Path.Combine(temp.Path, "tiny-vit", "hf", "weights.bin"), result.Path);
        Assert.Equal((sha, Sha256Origin.Hub, false), (result.Sha256, result.Origin, result.FromCache));
        Assert.Equal("0123456789abcdef0123456789abcdef01234567", result.Commit);
        Assert.Equal("sha256 reported by the Hub (X-Linked-Etag), not pinned", result.Sha256Description);
        Assert.Equal(
            ["HEAD /test/tiny/resolve/main/weights.bin HTTP/1.1", "GET /test/tiny/resolve/main/weights.bin HTTP/1.1", $"GET /cdn/{sha}/weights.bin HTTP/1.1"],
            server.Requests);
        // The Hub's sha256 is stored beside the file, so the cache is re-verified without asking the Hub again.
        Assert.Contains(sha, File.ReadAllText(result.Path + ModelDownloader.RecordSuffix));
        Assert.Equal(new[] { result.Path, result.Path + ModelDownloader.RecordSuffix }.Order(), Files(temp.Path).Order());

        var cached = await downloader.DownloadAsync(TinyVit, Hub());
        Assert.Equal((result.Path, sha, Sha256Origin.Hub, true), (cached.Path, cached.Sha256, cached.Origin, cached.FromCache));
        Assert.Equal(3, server.Requests.Count);

        // A damaged cached file fails that check and is fetched again.
        var damaged = Body.ToArray();
        damaged[5] ^= 1;
        File.WriteAllBytes(result.Path, damaged);
        var again = await downloader.DownloadAsync(TinyVit, Hub());
        Assert.False(again.FromCache);
        Assert.Equal(Body, File.ReadAllBytes(again.Path));
        Assert.Equal(6, server.Requests.Count);
    }

    [Fact]
    public async Task The_tokenizer_file_is_downloaded_with_the_weights_and_the_folder_loads_as_a_pipeline()
    {
        // A SigLIP-style open_clip repo: LFS weights (sha256 from the Hub) and a plain git spiece.model (no sha256: it must load).
        var family = Fixtures.Path_("reference", "open_clip", "families", "siglip-b16");
        var weights = File.ReadAllBytes(Path.Combine(family, "open_clip_model.safetensors"));
        var spm = File.ReadAllBytes(Fixtures.Path_("tokenizer", "sentencepiece", "spm.model"));
        using var server = new LocalHttpServer(weights, hub: new HubEmulation(Sha(weights)), gitFiles: new Dictionary<string, byte[]> { ["spiece.model"] = spm });
        using var temp = new TempFolder();
        using var downloader = new ModelDownloader(temp.Path, urlBase: server.BaseUrl);
        var spec = ModelRegistry.Get("family-siglip-b16").Spec;
        var entry = Hub("open_clip_model.safetensors", "open_clip", repo: "timm/tiny-siglip") with { Source = "webli", TokenizerFile = "spiece.model" };
        var result = await downloader.DownloadAsync(spec, entry);
        Assert.Equal(Path.Combine(result.Folder, "spiece.model"), result.Tokenizer);
        Assert.Equal(spm, File.ReadAllBytes(result.Tokenizer!));
        Assert.Contains(Path.Combine(result.Folder, "open_clip_config.json"), result.Configs);

        // The folder is a complete model: weights, config and tokenizer found beside them.
        using var pipeline = ClipGen.Applications.ClipPipeline.Load("family-siglip-b16", result.Folder);
        Assert.Equal("sentencepiece", pipeline.Tokenizer.Kind);
        using var ids = pipeline.Tokenize(["a photo of a cat"]).ToTensor();
        Assert.Equal(1L, ids[0, ids.shape[1] - 1].item<long>());   // padded with </s> (1) to the end of the context

        // A second run reuses both files without the Hub's sha256 for the tokenizer (it still loads).
        var requests = server.Requests.Count;
        var cached = await downloader.DownloadAsync(spec, entry);
        Assert.True(cached.FromCache);
        Assert.Equal(result.Tokenizer, cached.Tokenizer);
        Assert.Equal(requests, server.Requests.Count);

        // A tokenizer file that does not load is refused and not kept.
        File.Delete(result.Tokenizer!);
        using var bad = new LocalHttpServer(weights, hub: new HubEmulation(Sha(weights)), gitFiles: new Dictionary<string, byte[]> { ["spiece.model"] = "not a model"u8.ToArray() });
        using var badDownloader = new ModelDownloader(temp.Path, urlBase: bad.BaseUrl);
        var error = await Assert.ThrowsAsync<ClipGenException>(() => badDownloader.DownloadAsync(spec, entry));
        Assert.Contains("not a complete tokenizer file", error.Message);
        Assert.False(File.Exists(result.Tokenizer));
    }

    [Fact]
    public async Task A_body_that_differs_from_the_Hubs_sha256_is_an_error_and_leaves_nothing_in_the_cache()
    {
        var corrupted = Body.ToArray();
        corrupted[54321] ^= 0xFF;
        using var server = new LocalHttpServer(corrupted, hub: new HubEmulation(Sha(Body)));
        using var temp = new TempFolder();
        using var downloader = new ModelDownloader(temp.Path, urlBase: server.BaseUrl);
        var error = await Assert.ThrowsAsync<ClipGenException>(() => downloader.DownloadAsync(TinyVit, Hub()));
        Assert.Contains($"its sha256 is {Sha(corrupted)}, not {Sha(Body)} as the Hub reported (X-Linked-Etag)", error.Message);
        Assert.Contains("deleted", error.Message);
        Assert.Empty(Files(temp.Path));
    }

    [Fact]
    public async Task A_dropped_connection_is_resumed_through_the_redirect_with_a_range_request()
    {
        var sha = Sha(Body);
        using var server = new LocalHttpServer(Body, dropFirstAfter: 100_000, hub: new HubEmulation(sha));
        using var temp = new TempFolder();
        using var downloader = new ModelDownloader(temp.Path, urlBase: server.BaseUrl);
        var result = await downloader.DownloadAsync(TinyVit, Hub());
        Assert.Equal(Body, File.ReadAllBytes(result.Path));
        Assert.Equal(Sha256Origin.Hub, result.Origin);
        Assert.Equal(5, server.Requests.Count);
        Assert.StartsWith("HEAD /test/tiny/resolve/main/weights.bin", server.Requests[0]);
        Assert.Equal($"GET /cdn/{sha}/weights.bin HTTP/1.1", server.Requests[2]);
        // The resumed GET goes to the resolve URL again and sends its Range to the CDN too.
        Assert.Matches(@"^GET /test/tiny/resolve/main/weights.bin HTTP/1.1 Range: bytes=\d+-$", server.Requests[3]);
        Assert.Matches($@"^GET /cdn/{sha}/weights.bin HTTP/1.1 Range: bytes=\d+-$", server.Requests[4]);
        Assert.InRange(long.Parse(server.Requests[4].Split('=')[1].TrimEnd('-')), 1, 100_000);
    }

    [Fact]
    public async Task Without_X_Linked_Etag_and_without_a_pin_the_download_is_refused()
    {
        using var server = new LocalHttpServer(Body, hub: new HubEmulation(LinkedEtag: null));
        using var temp = new TempFolder();
        using var downloader = new ModelDownloader(temp.Path, urlBase: server.BaseUrl);
        var error = await Assert.ThrowsAsync<ClipGenException>(() => downloader.DownloadAsync(TinyVit, Hub()));
        Assert.Contains("the Hub reported no sha256", error.Message);
        Assert.Contains("not stored in LFS", error.Message);
        Assert.Contains("pins none", error.Message);
        Assert.Contains("sha256: <64 hex digits>", error.Message);
        Assert.Equal("HEAD /test/tiny/resolve/main/weights.bin HTTP/1.1", Assert.Single(server.Requests));
        Assert.Empty(Files(temp.Path));
    }

    [Fact]
    public async Task A_pinned_sha256_verifies_a_file_the_Hub_gives_no_sha256_for()
    {
        using var server = new LocalHttpServer(Body, hub: new HubEmulation(LinkedEtag: null));
        using var temp = new TempFolder();
        using var downloader = new ModelDownloader(temp.Path, urlBase: server.BaseUrl);
        var result = await downloader.DownloadAsync(TinyVit, Hub(sha256: Sha(Body), revision: "v1.0"));
        Assert.Equal((Sha(Body), Sha256Origin.Spec), (result.Sha256, result.Origin));
        Assert.Equal("sha256 pinned in the spec", result.Sha256Description);
        Assert.Equal(["HEAD /test/tiny/resolve/v1.0/weights.bin HTTP/1.1", "GET /test/tiny/resolve/v1.0/weights.bin HTTP/1.1"], server.Requests);
        Assert.Equal(Body, File.ReadAllBytes(result.Path));
    }

    [Fact]
    public async Task A_pinned_sha256_that_disagrees_with_the_Hubs_is_an_error_naming_both()
    {
        var other = Sha([1, 2, 3]);
        using var server = new LocalHttpServer(Body, hub: new HubEmulation(other));
        using var temp = new TempFolder();
        using var downloader = new ModelDownloader(temp.Path, urlBase: server.BaseUrl);
        var error = await Assert.ThrowsAsync<ClipGenException>(() => downloader.DownloadAsync(TinyVit, Hub(sha256: Sha(Body))));
        Assert.Contains($"pins sha256 {Sha(Body)}", error.Message);
        Assert.Contains($"the Hub reports {other}", error.Message);
        Assert.Contains("nothing was downloaded", error.Message);
        Assert.Single(server.Requests);
        Assert.Empty(Files(temp.Path));
    }

    [Fact]
    public async Task An_open_clip_download_gets_its_config_from_the_spec_and_the_folder_loads()
    {
        var bin = File.ReadAllBytes(LoaderParityTests.Ref("open_clip", "tiny-vit-gelu", "open_clip_pytorch_model.bin"));
        using var server = new LocalHttpServer(bin, hub: new HubEmulation(Sha(bin)));
        using var temp = new TempFolder();
        using var downloader = new ModelDownloader(temp.Path, urlBase: server.BaseUrl);
        var spec = ModelRegistry.Get("tiny-vit-gelu").Spec;
        var result = await downloader.DownloadAsync(spec, Hub("open_clip_pytorch_model.bin", "open_clip", repo: "laion/tiny"));
        Assert.Equal([Path.Combine(result.Folder, "open_clip_config.json")], result.Configs);
        using (var checkpoint = ClipCheckpoint.Open(result.Folder))
            Assert.Equal(CheckpointEcosystem.OpenClip, checkpoint.Ecosystem);
        LoaderParityTests.InferAndCompare("tiny-vit-gelu", result.Folder, "open_clip/tiny-vit-gelu");
    }

    [Fact]
    public async Task Format_hf_on_a_ResNet_or_with_another_file_name_is_refused_before_any_transfer()
    {
        using var temp = new TempFolder();
        using var downloader = new ModelDownloader(temp.Path, urlBase: new Uri("http://127.0.0.1:9/"));
        var error = await Assert.ThrowsAsync<ClipGenException>(() => downloader.DownloadAsync(ModelRegistry.Get("tiny-rn").Spec, Hub("model.safetensors", "hf")));
        Assert.Contains("no ResNet image tower", error.Message);
        error = await Assert.ThrowsAsync<ClipGenException>(() => downloader.DownloadAsync(TinyVit, Hub("weights.safetensors", "hf")));
        Assert.Contains("must be model.safetensors or pytorch_model.bin", error.Message);
        Assert.Empty(Files(temp.Path));
    }

    [Fact]
    public void Cli_downloads_a_Hub_file_writes_config_json_and_the_folder_reproduces_the_reference()
    {
        using var temp = new TempFolder();
        // The Hugging Face tiny model's spec, with a Hub entry: written as YAML, used through its path.
        var inferred = SpecInference.Infer(LoaderParityTests.Ref("hf", "tiny-vit")).Spec;
        var spec = inferred with
        {
            Name = "tiny-hf-hub", ClassName = SpecResolver.DefaultClassName("tiny-hf-hub"), Aliases = EquatableArray<string>.Empty,
            Pretrained = new[] { Hub("model.safetensors", "hf", repo: "someone/tiny-clip") }.ToEquatableArray(),
        };
        var yaml = temp.File("tiny-hf-hub.yaml");
        File.WriteAllText(yaml, SpecYamlWriter.Write(spec));
        Assert.Contains("    repo: someone/tiny-clip\n    file: model.safetensors\n    revision: main\n", File.ReadAllText(yaml));

        var model = File.ReadAllBytes(LoaderParityTests.Ref("hf", "tiny-vit", "model.safetensors"));
        using var server = new LocalHttpServer(model, hub: new HubEmulation(Sha(model)));
        var cache = temp.File("cache");
        var (code, output, err) = TestUtil.Cli("download", yaml, "--source", "hf", "--cache", cache, "--url-base", server.BaseUrl.ToString(), "--quiet");
        Assert.True(code == 0, err);
        var folder = Path.Combine(cache, "tiny-hf-hub", "hf");
        Assert.Equal(Path.Combine(folder, "model.safetensors") + Environment.NewLine, output);
        Assert.Contains($"sha256 {Sha(model)} verified: sha256 reported by the Hub (X-Linked-Etag), not pinned", err);
        Assert.Contains($"to pin it, add 'sha256: {Sha(model)}' and 'revision: 0123456789abcdef0123456789abcdef01234567'", err);
        Assert.Contains($"folder: {folder} (config written from the spec: config.json, preprocessor_config.json); load it with: clipgen infer --model {yaml} --weights {folder}", err);
        Assert.Equal("HEAD /someone/tiny-clip/resolve/main/model.safetensors HTTP/1.1", server.Requests[0]);
        Assert.True(File.Exists(Path.Combine(folder, "config.json")));

        LoaderParityTests.InferAndCompare(yaml, folder, "hf/tiny-vit");

        // Again: from the cache, verified against the stored sha256, no request.
        int requests = server.Requests.Count;
        (code, output, err) = TestUtil.Cli("download", yaml, "--source", "hf", "--cache", cache, "--url-base", server.BaseUrl.ToString(), "--quiet");
        Assert.True(code == 0, err);
        Assert.Contains("(cached)", err);
        Assert.Equal(requests, server.Requests.Count);
    }

    [Fact]
    public void Cli_source_hf_of_a_built_in_spec_asks_the_Hub_repo_of_the_spec()
    {
        // Any safetensors file does for the transfer; it is served as ViT-B-32-quickgelu's model.safetensors.
        var model = File.ReadAllBytes(LoaderParityTests.Ref("hf", "tiny-vit", "model.safetensors"));
        using var server = new LocalHttpServer(model, hub: new HubEmulation(Sha(model)));
        using var temp = new TempFolder();
        var (code, output, err) = TestUtil.Cli("download", "ViT-B-32-quickgelu", "--source", "hf", "--cache", temp.Path, "--url-base", server.BaseUrl.ToString(), "--quiet");
        Assert.True(code == 0, err);
        Assert.Equal("HEAD /openai/clip-vit-base-patch32/resolve/main/model.safetensors HTTP/1.1", server.Requests[0]);
        Assert.Equal(Path.Combine(temp.Path, "ViT-B-32-quickgelu", "hf", "model.safetensors") + Environment.NewLine, output);
        Assert.Contains("ViT-B-32-quickgelu (hf, openai/clip-vit-base-patch32@main (commit 0123456789abcdef0123456789abcdef01234567))", err);
        Assert.Contains("not pinned", err);
        using var config = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(temp.Path, "ViT-B-32-quickgelu", "hf", "config.json")));
        Assert.Equal("quick_gelu", config.RootElement.GetProperty("vision_config").GetProperty("hidden_act").GetString());
        Assert.Equal(768, config.RootElement.GetProperty("vision_config").GetProperty("hidden_size").GetInt32());
    }

    [Theory]
    [InlineData("RN50", "it has: none")]
    public void Cli_source_hf_on_a_ResNet_says_there_is_none_and_lists_the_sources(string model, string sources)
    {
        using var temp = new TempFolder();
        var (code, output, err) = TestUtil.Cli("download", model, "--source", "hf", "--cache", temp.Path);
        Assert.Equal(2, code);
        Assert.Equal("", output);
        Assert.Contains($"spec '{model}' has no 'hf' weights (Hugging Face's CLIPModel has no ResNet image tower", err);
        Assert.Contains(sources, err);
        Assert.Empty(Files(temp.Path));
    }
}

/// <summary>Wave 1's <c>--source hf</c> names a spec's first weights on the Hugging Face Hub; the tags now follow open_clip.</summary>
public class PretrainedTagTests
{
    [Theory]
    [InlineData("ViT-B-32", "hf", "laion2b_s34b_b79k")]
    [InlineData("RN50-quickgelu", "hf", "yfcc15m")]
    [InlineData("RN50-quickgelu", null, "openai")]
    [InlineData("ViT-B-32", "DataComp_XL_s13b_b90k", "datacomp_xl_s13b_b90k")]
    public void A_tag_selects_the_published_weights(string model, string? tag, string expected) =>
        Assert.Equal(expected, ClipGen.Downloads.ModelDownloader.Select(ClipGen.Modeling.ModelRegistry.Get(model).Spec, tag).Source);

    [Fact]
    public void An_unknown_tag_lists_the_known_ones()
    {
        var e = Assert.Throws<ClipGenException>(() => ClipGen.Downloads.ModelDownloader.Select(ClipGen.Modeling.ModelRegistry.Get("RN50-quickgelu").Spec, "laion400m_e32"));
        Assert.Contains("has no 'laion400m_e32' weights; it has: openai, yfcc15m, cc12m", e.Message);
    }
}

/// <summary><c>ClipPipeline.LoadPretrainedAsync(model, tag)</c>: download by open_clip's pretrained tag, verify, load.</summary>
public class LoadPretrainedTests
{
    [Fact]
    public async Task Loads_a_model_by_its_pretrained_tag_from_a_Hub_mirror_and_reproduces_the_reference()
    {
        var family = Fixtures.Path_("reference", "open_clip", "families", "siglip-b16");
        var weights = File.ReadAllBytes(Path.Combine(family, "open_clip_model.safetensors"));
        var spm = File.ReadAllBytes(Fixtures.Path_("tokenizer", "sentencepiece", "spm.model"));
        using var server = new LocalHttpServer(weights, hub: new HubEmulation(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(weights))),
            gitFiles: new Dictionary<string, byte[]> { ["spiece.model"] = spm });
        using var temp = new TempFolder();
        var yaml = Path.Combine(temp.Path, "tiny-siglip-hub.yaml");
        File.WriteAllText(yaml, "name: tiny-siglip-hub\nextends: family-siglip-b16\npretrained:\n  webli:\n    repo: timm/tiny-siglip\n"
            + "    file: open_clip_model.safetensors\n    format: open_clip\n    tokenizer_file: spiece.model\n");
        var options = new ClipGen.Applications.ClipPipelineOptions { CacheDirectory = Path.Combine(temp.Path, "cache"), DownloadUrlBase = server.BaseUrl };

        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => ClipGen.Applications.ClipPipeline.LoadPretrainedAsync(yaml, "webli", options, cancellationToken: cancelled.Token));
        var unknown = await Assert.ThrowsAsync<ClipGenException>(() => ClipGen.Applications.ClipPipeline.LoadPretrainedAsync(yaml, "laion2b", options));
        Assert.Contains("has no 'laion2b' weights; it has: webli", unknown.Message);

        var reports = new List<DownloadProgress>();
        using var pipeline = await ClipGen.Applications.ClipPipeline.LoadPretrainedAsync(yaml, "webli", options, new SyncProgress<DownloadProgress>(reports.Add));
        Assert.NotEmpty(reports);
        Assert.Equal("tiny-siglip-hub", pipeline.Spec.Name);
        Assert.Equal("sentencepiece", pipeline.Tokenizer.Kind);
        using var inputs = TestUtil.Read(Path.Combine(family, "inputs.safetensors"));
        using var outputs = TestUtil.Read(Path.Combine(family, "outputs.safetensors"));
        using var text = pipeline.Backend.EncodeText(inputs.Tensors["input_ids"]);
        TestUtil.AssertClose(outputs.Tensors["text_features"], text, "text_features");
    }

    /// <summary>An <see cref="IProgress{T}"/> that reports on the calling thread (Progress&lt;T&gt; posts to the thread pool).</summary>
    sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
