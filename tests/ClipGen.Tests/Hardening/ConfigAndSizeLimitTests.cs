using System.Text.Json.Nodes;
using ClipGen.Checkpoints;
using ClipGen.Modeling;
using ClipGen.Specs;
using Xunit;

namespace ClipGen.Tests.Hardening;

/// <summary>
/// Lying configs are refused with the key and the value instead of being read as defaults (issue 12, defect 12), and a spec
/// whose planned weights cannot fit in memory is refused with the numbers before anything is allocated (defect 7).
/// </summary>
public class ConfigAndSizeLimitTests
{
    static string Edited(string fixture, string config, string weights, Action<JsonObject> edit) =>
        HostileCorpus.EditedCheckpointFolder(Directory.CreateTempSubdirectory("clipgen-lying-").FullName, Fixtures.Path_("reference", fixture), config, weights, edit);

    static string Refused(string dir)
    {
        try { return Assert.Throws<ClipGenException>(() => SpecInference.Infer(dir)).Message; }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Theory]
    [InlineData("\"2\"", "vision_config.num_attention_heads must be a whole number, not \"2\"")]
    [InlineData("2.0", "vision_config.num_attention_heads must be a whole number, not 2.0")]
    [InlineData("-1", "vision_config.num_attention_heads is -1; it must be at least 1")]
    public void Hugging_Face_heads_of_the_wrong_type_or_range_are_refused(string value, string message)
    {
        var dir = Edited("hf/tiny-vit", "config.json", "model.safetensors", c => c["vision_config"]!["num_attention_heads"] = JsonNode.Parse(value));
        Assert.Contains(message, Refused(dir));
    }

    [Fact]
    public void A_Hugging_Face_text_config_that_is_not_an_object_is_refused()
    {
        var dir = Edited("hf/tiny-vit", "config.json", "model.safetensors", c => c["text_config"] = new JsonArray());
        Assert.Contains("text_config must be an object", Refused(dir));
    }

    [Theory]
    [InlineData("text_cfg", "heads", "\"2\"")]
    [InlineData("vision_cfg", "head_width", "32.0")]
    public void Open_clip_sizes_of_the_wrong_type_are_refused(string tower, string key, string value)
    {
        var dir = Edited("open_clip/tiny-vit-gelu", "open_clip_config.json", "open_clip_model.safetensors", c => c["model_cfg"]![tower]![key] = JsonNode.Parse(value));
        Assert.Contains($"model_cfg.{tower}.{key} must be a whole number, not {value}", Refused(dir));
    }

    [Fact]
    public void A_spec_too_large_for_memory_is_refused_with_its_parameter_count_before_allocating()
    {
        var spec = ModelRegistry.Get("demo-tiny").Spec;
        var huge = spec with { Text = spec.Text with { Width = 1 << 20, Heads = 4 } };
        var e = Assert.Throws<ClipGenException>(() => ClipModelFactory.Create(huge));
        Assert.Contains("plans 26,388,", e.Message);
        Assert.Contains("CLIPGEN_MAX_MODEL_BYTES", e.Message);
        // Loading checks the size before it opens the checkpoint: a missing file is not what it reports.
        var load = Assert.Throws<ClipGenException>(() => ClipModelFactory.Load(huge, "/nonexistent/weights.safetensors"));
        Assert.Contains("parameters", load.Message);
    }
}
