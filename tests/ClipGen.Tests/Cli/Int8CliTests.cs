using System.Globalization;
using System.Text.Json;
using ClipGen.Onnx;
using ClipGen.Tests.Applications;
using Xunit;

namespace ClipGen.Tests.Cli;

/// <summary>--dtype int8 and --precision int8 on the command line.</summary>
public class Int8CliTests
{
    [Fact]
    public void Export_onnx_with_dtype_int8_writes_quantized_graphs()
    {
        var dir = TestUtil.TempDir();
        var (code, _, err) = TestUtil.Cli("export-onnx", "--model", "tiny-vit", "--weights", AppFixtures.Weights("openai/tiny-vit"), "--output", dir, "--dtype", "int8");
        Assert.True(code == 0, err);
        Assert.Contains("int8", err);
        foreach (var file in new[] { "image.onnx", "text.onnx", "clip.onnx" })
        {
            var info = OnnxModelInfo.Load(Path.Combine(dir, file));
            Assert.Equal("int8", info.Metadata[OnnxQuantizer.MetaPrecision]);
            Assert.Contains("com.microsoft:DynamicQuantizeMatMul", info.OpTypes);
        }
        // The full graph quantizes both towers: 2 layers × 4 linear layers each.
        Assert.Equal(16, OnnxModelInfo.Load(Path.Combine(dir, "clip.onnx")).OpTypes.Count(t => t == "com.microsoft:DynamicQuantizeMatMul"));
    }

    [Fact]
    public void Parity_with_precision_int8_prints_the_cosine_of_every_embedding()
    {
        var (code, output, err) = TestUtil.Cli("parity", "--model", "tiny-rn", "--weights", AppFixtures.Weights("openai/tiny-rn"), "--batch", "3", "--precision", "int8");
        Assert.True(code == 0, err);
        var rows = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        foreach (var name in new[] { "image_features", "text_features" })
        {
            var row = Assert.Single(rows, r => r.StartsWith(name + " ", StringComparison.Ordinal));
            var each = row[(row.IndexOf("each", StringComparison.Ordinal) + 4)..].Split(' ', StringSplitOptions.RemoveEmptyEntries)
                .Select(c => double.Parse(c, CultureInfo.InvariantCulture)).ToArray();
            Assert.Equal(3, each.Length);
            Assert.All(each, c => Assert.InRange(c, 0.99, 1.0));
        }
        Assert.Contains("lowest cosine", output);
    }

    [Fact]
    public void Classify_with_precision_int8_ranks_like_fp32()
    {
        string[] Run(params string[] extra)
        {
            var args = new List<string> { "classify", "--model", "tiny-vit", "--weights", AppFixtures.Weights("openai/tiny-vit"), "--vocab", AppFixtures.Vocab,
                "--image", AppFixtures.Images[0], "--labels", "a diagram,a dog,a cat", "--json", "--backend", "onnx" };
            args.AddRange(extra);
            var (code, output, err) = TestUtil.Cli([.. args]);
            Assert.True(code == 0, err);
            using var doc = JsonDocument.Parse(output);
            return doc.RootElement[0].GetProperty("probs").EnumerateObject().OrderByDescending(p => p.Value.GetDouble()).Select(p => p.Name).ToArray();
        }
        Assert.Equal(Run(), Run("--precision", "int8"));
    }

    [Fact]
    public void Precision_int8_needs_the_onnx_backend_and_a_known_name()
    {
        var w = AppFixtures.Weights("openai/tiny-vit");
        var (code, _, err) = TestUtil.Cli("embed", "--model", "tiny-vit", "--weights", w, "--images", TestUtil.TempDir(), "--output", "x.safetensors", "--precision", "int8");
        Assert.Equal(2, code);
        Assert.Contains("--backend onnx", err);
        (code, _, err) = TestUtil.Cli("search", "--index", "i.safetensors", "--model", "tiny-vit", "--weights", w, "--query", "a", "--backend", "onnx", "--precision", "int4");
        Assert.Equal(2, code);
        Assert.Contains("--precision takes fp32 or int8", err);
    }
}
