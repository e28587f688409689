using Xunit;

namespace ClipGen.Tests.Cli;

public class InferCliTests
{
    [Theory]
    [InlineData("openai/tiny-vit", "tiny-vit", "model.safetensors")]
    [InlineData("openai/tiny-rn", "tiny-rn", "model.safetensors")]
    [InlineData("open_clip/tiny-vit-gelu", "tiny-vit-gelu", "open_clip_model.safetensors")]
    public void Infer_reproduces_reference_outputs(string folder, string model, string weights)
    {
        var dir = TestUtil.TempDir();
        var outPath = Path.Combine(dir, "out.safetensors");
        var (code, _, err) = TestUtil.Cli("infer", "--model", model, "--weights", Fixtures.Path_("reference", folder, weights),
            "--inputs", Fixtures.Path_("reference", folder, "inputs.safetensors"), "--output", outPath);
        Assert.True(code == 0, err);
        using var expected = TestUtil.Read(Fixtures.Path_("reference", folder, "outputs.safetensors"));
        using var actual = TestUtil.Read(outPath);
        Assert.Equal(expected.Tensors.Keys.Order(), actual.Tensors.Keys.Order());
        foreach (var key in expected.Tensors.Keys)
            TestUtil.AssertClose(expected.Tensors[key], actual.Tensors[key], key);
    }

    [Fact]
    public void Infer_with_a_spec_file_path_and_only_text()
    {
        var dir = TestUtil.TempDir();
        // Inputs with input_ids only.
        using (var inputs = TestUtil.Read(Fixtures.Path_("reference", "openai", "tiny-vit", "inputs.safetensors")))
            ClipGen.IO.TensorFiles.SaveSafetensors(Path.Combine(dir, "in.safetensors"), new Dictionary<string, TorchSharp.torch.Tensor> { ["input_ids"] = inputs.Tensors["input_ids"] });
        var spec = Path.Combine(AppContext.BaseDirectory, "specs", "tiny-vit.yaml");
        var (code, _, err) = TestUtil.Cli("infer", "--model", spec, "--weights", Fixtures.Path_("reference", "openai", "tiny-vit", "model.safetensors"),
            "--inputs", Path.Combine(dir, "in.safetensors"), "--output", Path.Combine(dir, "out.safetensors"));
        Assert.True(code == 0, err);
        using var actual = TestUtil.Read(Path.Combine(dir, "out.safetensors"));
        Assert.Equal(new[] { "text_features" }, actual.Tensors.Keys.ToArray());
        using var expected = TestUtil.Read(Fixtures.Path_("reference", "openai", "tiny-vit", "outputs.safetensors"));
        TestUtil.AssertClose(expected.Tensors["text_features"], actual.Tensors["text_features"], "text_features");
    }

    [Fact]
    public void Malformed_spec_is_a_one_line_error_with_file_line_and_column()
    {
        var dir = TestUtil.TempDir();
        var spec = Path.Combine(dir, "bad.yaml");
        File.WriteAllText(spec, "name: bad\nembed_dim: 32\nactivation: quick_gelu\ninit_logit_scale: 2.65\nvision:\n  image_size: 30\n  patch_size: 32\n  layers: 2\n  width: 64\ntext:\n  context_length: 77\n  vocab_size: 49408\n  width: 8\n  heads: 2\n  layers: 2\ntokenizer:\n  kind: clip_bpe\npreprocess:\n  mean: [0.5, 0.5, 0.5]\n  std: [0.5, 0.5, 0.5]\n  interpolation: bicubic\n  resize_mode: shortest\n");
        var (code, output, err) = TestUtil.Cli("infer", "--model", spec, "--weights", "w.safetensors", "--inputs", "i.safetensors", "--output", Path.Combine(dir, "o.safetensors"));
        Assert.Equal(2, code);
        Assert.Equal("", output);
        var line = Assert.Single(err.TrimEnd().Split('\n'));
        Assert.Contains($"{spec}(7,15): error CLIPGEN007", line);
    }

    [Fact]
    public void Yaml_syntax_error_is_reported_with_its_line()
    {
        var dir = TestUtil.TempDir();
        var spec = Path.Combine(dir, "broken.yaml");
        File.WriteAllText(spec, "name: broken\nvision: [1, 2\n");
        var (code, _, err) = TestUtil.Cli("infer", "--model", spec, "--weights", "w", "--inputs", "i", "--output", "o");
        Assert.Equal(2, code);
        Assert.Contains("error CLIPGEN001", err);
        Assert.Contains(spec + "(", err);
        Assert.Single(err.TrimEnd().Split('\n'));
    }

    [Fact]
    public void Weights_of_another_architecture_list_the_keys()
    {
        var dir = TestUtil.TempDir();
        var (code, _, err) = TestUtil.Cli("infer", "--model", "tiny-vit", "--weights", Fixtures.Path_("reference", "openai", "tiny-rn", "model.safetensors"),
            "--inputs", Fixtures.Path_("reference", "openai", "tiny-vit", "inputs.safetensors"), "--output", Path.Combine(dir, "o.safetensors"));
        Assert.Equal(2, code);
        Assert.Single(err.TrimEnd().Split('\n'));
        Assert.Contains("do not fit spec 'tiny-vit'", err);
        Assert.Contains("missing key(s): visual.class_embedding", err);
        Assert.Contains("unexpected key(s): visual.attnpool.", err);
        Assert.Contains("visual.conv1.weight is [4,3,3,3] in the file but [64,3,8,8] in the model", err);
        Assert.Contains("look like tiny-rn", err);
    }

    [Fact]
    public void Weights_with_wrong_shapes_list_the_mismatches()
    {
        var dir = TestUtil.TempDir();
        var (code, _, err) = TestUtil.Cli("infer", "--model", "tiny-vit", "--weights", Fixtures.Path_("reference", "open_clip", "tiny-vit-gelu", "open_clip_model.safetensors"),
            "--inputs", Fixtures.Path_("reference", "openai", "tiny-vit", "inputs.safetensors"), "--output", Path.Combine(dir, "o.safetensors"));
        Assert.Equal(2, code);
        Assert.Contains("shape mismatch(es): ", err);
        Assert.Contains("positional_embedding is [77,32] in the file but [77,8] in the model", err);
    }

    [Fact]
    public void Unknown_model_and_missing_options_exit_2()
    {
        Assert.Equal(2, TestUtil.Cli("infer", "--model", "ViT-B-33", "--weights", "w", "--inputs", "i", "--output", "o").Code);
        var (code, _, err) = TestUtil.Cli("infer", "--model", "tiny-vit");
        Assert.Equal(2, code);
        Assert.Contains("missing required option --weights", err);
        Assert.Equal(2, TestUtil.Cli("nonsense").Code);
    }

    [Fact]
    public void Models_lists_specs_with_counts()
    {
        var (code, output, _) = TestUtil.Cli("models");
        Assert.Equal(0, code);
        Assert.Contains("ViT-B-32-quickgelu", output);
        Assert.Contains("ViT-B/32", output);
        Assert.Contains("151.28M", output);
        Assert.Contains("ResNet[3,4,6,3]", output);
    }
}
