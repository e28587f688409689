using System.Buffers.Binary;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using ClipGen.Applications;
using ClipGen.Tests;
using Xunit;

namespace ClipGen.Server.Tests;

/// <summary>The shared reference fixtures ($CLIPGEN_FIXTURES, else ../shared/fixtures beside the repository) and files made from them.</summary>
static class Fixtures
{
    public static string Root => ClipGen.Tests.Fixtures.Root;

    public static string Path_(params string[] parts) => ClipGen.Tests.Fixtures.Path_(parts);

    public static string TinyVitSpec => Path.Combine(AppContext.BaseDirectory, "specs", "tiny-vit.yaml");
    public static string TinyVitWeights => Path_("reference", "openai", "tiny-vit", "model.safetensors");
    public static string Vocab => Path_("vocab", "bpe_simple_vocab_16e6.txt.gz");

    public static JsonElement TinyVitConfig()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path_("reference", "openai", "tiny-vit", "config.json")));
        return doc.RootElement.Clone();
    }

    /// <summary>Real photos and CLIP.png (RGBA) and a 4:2:0 JPEG from the preprocessing fixtures.</summary>
    public static string[] RealImages => new[] { "coffee.png", "horse.png", "CLIP.png", "synth_q90_420.jpg" }
        .Select(n => Path_("preprocess", "images", n)).ToArray();

    public static string TempDir()
    {
        var d = Path.Combine(Path.GetTempPath(), "clipgen-server-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(d);
        return d;
    }

    /// <summary>Seeded PNGs: a coloured background with a rectangle of another colour.</summary>
    public static List<string> MakeImages(string dir, int count, int seed = 1234)
    {
        var rng = new Random(seed);
        var files = new List<string>();
        for (int i = 0; i < count; i++)
        {
            var path = Path.Combine(dir, $"img-{i:D3}.png");
            SeededImages.WritePng(path, rng, sizeSpread: 40);
            files.Add(path);
        }
        return files;
    }

    public static string DataUrl(string file)
    {
        var type = Path.GetExtension(file).ToLowerInvariant() is ".jpg" or ".jpeg" ? "image/jpeg" : "image/png";
        return $"data:{type};base64,{Convert.ToBase64String(File.ReadAllBytes(file))}";
    }

    /// <summary>A float32 tensor of a safetensors file, row-major, with its shape.</summary>
    public static (float[] Data, long[] Shape) ReadF32(string path, string name)
    {
        var bytes = File.ReadAllBytes(path);
        long headerLength = BinaryPrimitives.ReadInt64LittleEndian(bytes);
        using var header = JsonDocument.Parse(Encoding.UTF8.GetString(bytes, 8, (int)headerLength));
        var entry = header.RootElement.GetProperty(name);
        Assert.Equal("F32", entry.GetProperty("dtype").GetString());
        var shape = entry.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        var offsets = entry.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        var data = new float[(offsets[1] - offsets[0]) / 4];
        for (int i = 0; i < data.Length; i++) data[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan((int)(8 + headerLength + offsets[0] + 4 * i)));
        return (data, shape);
    }

    public static float[] Normalized(ReadOnlySpan<float> row)
    {
        double norm = 0;
        foreach (var x in row) norm += (double)x * x;
        norm = Math.Sqrt(norm);
        var result = new float[row.Length];
        for (int i = 0; i < row.Length; i++) result[i] = (float)(row[i] / norm);
        return result;
    }

    public static double MaxAbsDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Assert.Equal(a.Length, b.Length);
        double max = 0;
        for (int i = 0; i < a.Length; i++) max = Math.Max(max, Math.Abs((double)a[i] - b[i]));
        return max;
    }
}

/// <summary>A <see cref="ClipServer"/> on 127.0.0.1 (a free port) with a client.</summary>
sealed class RunningServer : IAsyncDisposable
{
    public ClipServer Server { get; }
    public HttpClient Client { get; }

    RunningServer(ClipServer server)
    {
        Server = server;
        Client = new HttpClient { BaseAddress = server.Addresses.Single(), Timeout = TimeSpan.FromMinutes(2) };
    }

    public static async Task<RunningServer> StartAsync(ServeOptions options, ClipPipeline? pipeline = null)
    {
        var server = ClipServer.Build(options with { Urls = ["http://127.0.0.1:0"], Quiet = true }, pipeline);
        await server.StartAsync();
        return new RunningServer(server);
    }

    public static ServeOptions TinyVit(string? index = null) => new()
    {
        Model = Fixtures.TinyVitSpec,
        Weights = Fixtures.TinyVitWeights,
        Vocabulary = Fixtures.Vocab,
        Index = index,
    };

    public Task<HttpResponseMessage> PostJson(string path, object body) => Client.PostAsJsonAsync(path, body);

    public Task<HttpResponseMessage> PostRaw(string path, string body) =>
        Client.PostAsync(path, new StringContent(body, Encoding.UTF8, "application/json"));

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await Server.StopAsync();
        await Server.DisposeAsync();
    }
}

/// <summary>
/// One server for a test class: the tiny reference ViT with an index that <see cref="FolderEmbedder"/> (what <c>clipgen embed</c>
/// runs) made of seeded PNGs and the real fixture images.
/// </summary>
public sealed class IndexedServerFixture : IAsyncLifetime
{
    internal RunningServer Running { get; private set; } = null!;
    public string Folder { get; } = Fixtures.TempDir();
    public IReadOnlyList<string> Files { get; private set; } = [];
    public string IndexPath => Path.Combine(Folder, "index.safetensors");
    /// <summary>The index <c>embed</c> wrote: the reference image embeddings.</summary>
    public EmbeddingIndex Index { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var images = Path.Combine(Folder, "images");
        Directory.CreateDirectory(images);
        var files = Fixtures.MakeImages(images, 12);
        foreach (var real in Fixtures.RealImages)
        {
            var copy = Path.Combine(images, Path.GetFileName(real));
            File.Copy(real, copy);
            files.Add(copy);
        }
        Files = files;
        using (var pipeline = ClipPipeline.Load(Fixtures.TinyVitSpec, Fixtures.TinyVitWeights, Fixtures.Vocab))
            Index = FolderEmbedder.Run(pipeline, files, IndexPath, new FolderEmbedderOptions { BatchSize = 5 }).Index;
        Running = await RunningServer.StartAsync(RunningServer.TinyVit(IndexPath) with { MaxBatch = 16, MaxWaitMs = 5 });
    }

    public async Task DisposeAsync()
    {
        await Running.DisposeAsync();
        try { Directory.Delete(Folder, recursive: true); } catch (IOException) { }
    }
}
