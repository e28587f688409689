using System.Diagnostics;
using System.Text.Json;
using ClipGen.Applications;
using ClipGen.Modeling;
using Xunit;
using Xunit.Abstractions;

namespace ClipGen.Tests.Applications;

public class EmbedSearchTests(ITestOutputHelper output)
{
    static string Weights => AppFixtures.Weights("openai/tiny-vit");

    /// <summary>Small seeded PNGs: a random background with a random rectangle; plus <paramref name="broken"/> files that are not images.</summary>
    static string MakeImages(int count, int broken = 0)
    {
        var dir = Path.Combine(TestUtil.TempDir(), "imgs");
        Directory.CreateDirectory(Path.Combine(dir, "sub"));
        var rng = new Random(1234);
        for (int i = 0; i < count; i++)
            SeededImages.WritePng(Path.Combine(dir, i % 10 == 0 ? "sub" : "", $"img-{i:D4}.png"), rng, sizeSpread: 16);
        for (int i = 0; i < broken; i++) File.WriteAllBytes(Path.Combine(dir, $"broken-{i}.png"), [0x89, 0x50, 0x4E, 0x47, 1, 2, 3]);
        File.WriteAllText(Path.Combine(dir, "notes.txt"), "not an image");
        return dir;
    }

    static string CliDll => Path.Combine(AppContext.BaseDirectory, "ClipGen.Cli.dll");

    static Process Start(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        psi.ArgumentList.Add(CliDll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment.Remove("CLIPGEN_VOCAB");
        return Process.Start(psi)!;
    }

    static (int Code, string Err) RunToEnd(params string[] args)
    {
        using var p = Start(args);
        var err = p.StandardError.ReadToEndAsync();
        p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, err.Result);
    }

    [Fact]
    public void Interrupted_embedding_resumes_to_the_same_bytes()
    {
        var images = MakeImages(1000, broken: 2);
        var dir = Path.GetDirectoryName(images)!;
        // The child process does not hold the test models' generated classes: give it the spec file (a run-time model).
        var spec = Path.Combine(AppContext.BaseDirectory, "specs", "tiny-vit.yaml");
        string[] Args(string output) => ["embed", "--model", spec, "--weights", Weights, "--images", images, "--output", output, "--batch-size", "6"];

        var full = Path.Combine(dir, "full.safetensors");
        var clock = Stopwatch.StartNew();
        var (code, err) = RunToEnd(Args(full));
        Assert.True(code == 0, err);
        output.WriteLine($"uninterrupted run: {clock.Elapsed.TotalSeconds:F1} s; {err.Trim()}");
        Assert.Contains("2 image(s) skipped", err);
        Assert.Contains("skipped: ", err);

        // Interrupt a second run after some shards, then run it again.
        var resumed = Path.Combine(dir, "resumed.safetensors");
        var parts = FolderEmbedder.PartsDirectory(resumed);
        int shardsAtKill;
        using (var p = Start(Args(resumed)))
        {
            _ = p.StandardError.ReadToEndAsync();
            _ = p.StandardOutput.ReadToEndAsync();
            var deadline = Stopwatch.StartNew();
            while ((shardsAtKill = Directory.Exists(parts) ? Directory.GetFiles(parts, "s*-b*.json").Length : 0) < 25)
            {
                Assert.False(p.HasExited, "the run finished before it could be interrupted");
                Assert.True(deadline.Elapsed < TimeSpan.FromMinutes(3), "no progress");
                Thread.Sleep(5);
            }
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
        }
        Assert.False(File.Exists(resumed));
        shardsAtKill = Directory.GetFiles(parts, "s*-b*.json").Length;
        output.WriteLine($"killed with {shardsAtKill} of 167 batches committed");
        Assert.InRange(shardsAtKill, 25, 166);

        (code, err) = RunToEnd(Args(resumed));
        Assert.True(code == 0, err);
        output.WriteLine(err.Trim());
        Assert.Contains("resuming: ", err);
        Assert.False(Directory.Exists(parts));

        Assert.Equal(File.ReadAllBytes(full), File.ReadAllBytes(resumed));
        Assert.Equal(File.ReadAllBytes(EmbeddingIndex.FileListPath(full)), File.ReadAllBytes(EmbeddingIndex.FileListPath(resumed)));
        var index = EmbeddingIndex.Load(resumed);
        Assert.Equal(1000, index.Count);
        Assert.Equal(32, index.Dimensions);
        Assert.Equal("tiny-vit", index.Model);
        Assert.DoesNotContain(index.Files, f => f.Contains("broken") || f.EndsWith(".txt"));
        Assert.Equal(index.Files.Order(StringComparer.Ordinal), index.Files);

        // Rows are the library's embeddings of the same files.
        using var pipeline = AppFixtures.Pipeline("openai/tiny-vit");
        using var expected = pipeline.EmbedImages([index.Files[0], index.Files[500], index.Files[999]]).ToTensor();
        using var actual = TorchSharp.torch.tensor(new[] { 0, 500, 999 }.SelectMany(r => index[r].ToArray()).ToArray(), [3, 32]);
        TestUtil.AssertClose(expected, actual, "index rows", 1e-6);
    }

    [Fact]
    public void Embed_then_search_by_text_and_by_image()
    {
        var images = MakeImages(40);
        var index = Path.Combine(Path.GetDirectoryName(images)!, "out", "photos.safetensors");
        var (code, _, err) = TestUtil.Cli("embed", "--model", "tiny-vit", "--weights", Weights, "--images", images, "--output", index, "--batch-size", "16", "--quiet");
        Assert.True(code == 0, err);
        Assert.True(File.Exists(Path.Combine(Path.GetDirectoryName(index)!, "photos.files.txt")));
        var loaded = EmbeddingIndex.Load(index);
        Assert.Equal(40, loaded.Count);

        // Image-to-image: an indexed image is its own best match.
        var query = loaded.Files[7];
        (code, var stdout, err) = TestUtil.Cli("search", "--index", index, "--model", "tiny-vit", "--weights", Weights, "--image", query, "--top", "5", "--json");
        Assert.True(code == 0, err);
        using (var doc = JsonDocument.Parse(stdout))
        {
            var hits = doc.RootElement.EnumerateArray().ToArray();
            Assert.Equal(5, hits.Length);
            Assert.Equal(query, hits[0].GetProperty("image").GetString());
            Assert.Equal(1.0, hits[0].GetProperty("score").GetDouble(), 5);
            var scores = hits.Select(h => h.GetProperty("score").GetDouble()).ToArray();
            Assert.Equal(scores.OrderByDescending(s => s), scores);
        }

        // Text-to-image: the ranking is the cosine with the library's text embedding.
        (code, stdout, err) = TestUtil.Cli("search", "--index", index, "--model", "tiny-vit", "--weights", Weights, "--vocab", AppFixtures.Vocab, "--query", "a red car", "--top", "3");
        Assert.True(code == 0, err);
        var lines = stdout.TrimEnd().Split('\n');
        Assert.Equal(3, lines.Length);
        using var pipeline = AppFixtures.Pipeline("openai/tiny-vit");
        var q = pipeline.EmbedTexts(["a red car"]);
        var best = loaded.Search(q.Data, 3);
        for (int i = 0; i < 3; i++) Assert.EndsWith("  " + best[i].File, lines[i].TrimEnd('\r'));

        // The index of another model is refused.
        (code, _, err) = TestUtil.Cli("search", "--index", index, "--model", "tiny-rn", "--weights", AppFixtures.Weights("openai/tiny-rn"), "--image", query);
        Assert.Equal(2, code);
        Assert.Contains("holds embeddings of model 'tiny-vit', not 'tiny-rn'", Assert.Single(err.TrimEnd().Split('\n')));
    }

    [Fact]
    public void Search_uses_the_hnsw_graph_beside_the_index_and_agrees_with_exact_search()
    {
        var images = MakeImages(60);
        var index = Path.Combine(Path.GetDirectoryName(images)!, "h", "photos.safetensors");
        var (code, _, err) = TestUtil.Cli("embed", "--model", "tiny-vit", "--weights", Weights, "--input", images, "--output", index, "--hnsw", "--int8", "--quiet");
        Assert.True(code == 0, err);
        Assert.Contains("HNSW index (int8) of 60 rows written to", err);
        Assert.True(File.Exists(EmbeddingIndex.HnswPath(index)));
        var query = EmbeddingIndex.Load(index).Files[11];
        string Search(params string[] more)
        {
            var (c, stdout, e) = TestUtil.Cli(["search", "--index", index, "--model", "tiny-vit", "--weights", Weights, "--image", query, "--top", "8", .. more]);
            Assert.True(c == 0, e);
            return stdout;
        }
        var approximate = Search();
        Assert.Equal(Search("--exact"), approximate); // 60 rows: the graph finds them all, and re-scoring gives exact scores
        Assert.Equal(approximate, Search("--ef", "16"));
        Assert.EndsWith("  " + query, approximate.Split('\n')[0].TrimEnd());
        // A graph of another index is refused.
        var small = Path.Combine(Path.GetDirectoryName(index)!, "small.safetensors");
        (code, _, err) = TestUtil.Cli("embed", "--model", "tiny-vit", "--weights", Weights, "--input", Path.Combine(images, "sub"), "--output", small, "--quiet");
        Assert.True(code == 0, err);
        File.Copy(EmbeddingIndex.HnswPath(index), EmbeddingIndex.HnswPath(small));
        (code, _, err) = TestUtil.Cli("search", "--index", small, "--model", "tiny-vit", "--weights", Weights, "--image", query);
        Assert.Equal(2, code);
        Assert.Contains("was built from another index", err);
    }

    [Fact]
    public void Embed_accepts_a_glob()
    {
        var images = MakeImages(30);
        var output = Path.Combine(Path.GetDirectoryName(images)!, "glob.safetensors");
        var (code, _, err) = TestUtil.Cli("embed", "--model", "tiny-vit", "--weights", Weights, "--images", Path.Combine(images, "sub", "*.png"), "--output", output, "--quiet");
        Assert.True(code == 0, err);
        Assert.Equal(3, EmbeddingIndex.Load(output).Count); // img-0000, img-0010, img-0020 are in sub/
        (code, _, err) = TestUtil.Cli("embed", "--model", "tiny-vit", "--weights", Weights, "--images", Path.Combine(images, "**", "img-001?.png"), "--output", output, "--quiet");
        Assert.True(code == 0, err);
        Assert.Equal(10, EmbeddingIndex.Load(output).Count);
    }

    [Fact]
    public void A_folder_without_images_is_a_one_line_error()
    {
        var dir = TestUtil.TempDir();
        File.WriteAllText(Path.Combine(dir, "readme.txt"), "no images here");
        var (code, _, err) = TestUtil.Cli("embed", "--model", "tiny-vit", "--weights", Weights, "--images", dir, "--output", Path.Combine(dir, "e.safetensors"));
        Assert.Equal(2, code);
        Assert.Contains("no images in", Assert.Single(err.TrimEnd().Split('\n')));
        Assert.False(File.Exists(Path.Combine(dir, "e.safetensors")));
    }
}
