using ClipGen.Onnx;
using Xunit;

namespace ClipGen.Tests.Cli;

public class OnnxCliTests
{
    [Theory]
    [InlineData("openai/tiny-vit", "tiny-vit", "model.safetensors")]
    [InlineData("openai/tiny-rn", "tiny-rn", "model.safetensors")]
    [InlineData("open_clip/tiny-vit-gelu", "tiny-vit-gelu", "open_clip_model.safetensors")]
    public void Infer_with_the_onnx_backend_reproduces_reference_outputs(string folder, string model, string weights)
    {
        var outPath = Path.Combine(TestUtil.TempDir(), "out.safetensors");
        var (code, _, err) = TestUtil.Cli("infer", "--model", model, "--weights", Fixtures.Path_("reference", folder, weights),
            "--inputs", Fixtures.Path_("reference", folder, "inputs.safetensors"), "--output", outPath, "--backend", "onnx");
        Assert.True(code == 0, err);
        Assert.Contains("(onnx)", err);
        using var expected = TestUtil.Read(Fixtures.Path_("reference", folder, "outputs.safetensors"));
        using var actual = TestUtil.Read(outPath);
        Assert.Equal(expected.Tensors.Keys.Order(), actual.Tensors.Keys.Order());
        foreach (var key in expected.Tensors.Keys)
            TestUtil.AssertClose(expected.Tensors[key], actual.Tensors[key], key);
    }

    [Fact]
    public void Export_onnx_writes_the_requested_files_in_fp16()
    {
        var dir = TestUtil.TempDir();
        var (code, output, err) = TestUtil.Cli("export-onnx", "--model", "tiny-rn", "--weights", Fixtures.Path_("reference", "openai", "tiny-rn", "model.safetensors"),
            "--output", dir, "--dtype", "fp16", "--kind", "image");
        Assert.True(code == 0, err);
        Assert.Contains("image.onnx", output);
        Assert.Equal(["image.onnx"], Directory.GetFiles(dir).Select(Path.GetFileName));
        var info = OnnxModelInfo.Load(Path.Combine(dir, "image.onnx"));
        Assert.Equal("float16", info.Metadata[ClipOnnxNames.MetaWeightStorage]);
        Assert.Equal("tiny-rn", info.Metadata[ClipOnnxNames.MetaSpecName]);

        (code, _, _) = TestUtil.Cli("export-onnx", "--model", "tiny-rn", "--weights", Fixtures.Path_("reference", "openai", "tiny-rn", "model.safetensors"),
            "--output", dir);
        Assert.Equal(0, code);
        Assert.Equal(["clip.onnx", "image.onnx", "text.onnx"], Directory.GetFiles(dir).Select(Path.GetFileName).Order());
    }

    [Fact]
    public void Export_onnx_rejects_bad_options()
    {
        var w = Fixtures.Path_("reference", "openai", "tiny-rn", "model.safetensors");
        Assert.Equal(2, TestUtil.Cli("export-onnx", "--model", "tiny-rn", "--weights", w, "--output", TestUtil.TempDir(), "--dtype", "int4").Code);
        Assert.Equal(2, TestUtil.Cli("export-onnx", "--model", "tiny-rn", "--weights", w, "--output", TestUtil.TempDir(), "--kind", "both").Code);
        var (code, _, err) = TestUtil.Cli("infer", "--model", "tiny-rn", "--weights", w, "--inputs", "i", "--output", "o", "--backend", "tensorrt");
        Assert.Equal(2, code);
        Assert.Contains("unknown backend 'tensorrt'", err);
    }

    [Theory]
    [InlineData("openai/tiny-vit", "tiny-vit", "model.safetensors")]
    [InlineData("openai/tiny-rn", "tiny-rn", "model.safetensors")]
    public void Parity_prints_max_and_mean_diffs_per_output(string folder, string model, string weights)
    {
        var (code, output, err) = TestUtil.Cli("parity", "--model", model, "--weights", Fixtures.Path_("reference", folder, weights), "--batch", "3", "--seed", "7");
        Assert.True(code == 0, err);
        var rows = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        foreach (var name in new[] { "image_features", "text_features", "logits_per_image", "logits_per_text" })
        {
            var row = Assert.Single(rows, r => r.StartsWith(name + " ", StringComparison.Ordinal));
            var cols = row.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            double max = double.Parse(cols[1], System.Globalization.CultureInfo.InvariantCulture);
            double mean = double.Parse(cols[2], System.Globalization.CultureInfo.InvariantCulture);
            Assert.InRange(mean, 0, max);
            Assert.True(max < 1e-4 * Math.Max(1, double.Parse(cols[3], System.Globalization.CultureInfo.InvariantCulture)), row);
        }
    }
}
