using ClipGen.Modeling;
using ClipGen.Specs;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;

namespace ClipGen.Tests.Models;

public class KeyTableTests(ITestOutputHelper output)
{
    /// <summary>Published parameter totals (open_clip / the CLIP paper's model cards), in millions, 2 decimals.</summary>
    [Theory]
    [InlineData("ViT-B-32", 151.28)]
    [InlineData("ViT-B-16", 149.62)]
    [InlineData("ViT-L-14", 427.62)]
    [InlineData("RN50", 102.01)]
    [InlineData("RN101", 119.69)]
    [InlineData("ViT-B/32", 151.28)]
    public void Parameter_count_matches_published_total(string name, double millions)
    {
        var info = ModelRegistry.Get(name);
        output.WriteLine($"{info.Name}: {info.ParameterCount:N0} parameters");
        Assert.Equal(millions, Math.Round(info.ParameterCount / 1e6, 2));
    }

    [Fact]
    public void Exact_parameter_counts_of_openai_models()
    {
        // sum(p.numel() for p in model.parameters()) of OpenAI's models as built by clip.model.build_model.
        Assert.Equal(151_277_313L, ModelRegistry.Get("ViT-B-32").ParameterCount);
        Assert.Equal(149_620_737L, ModelRegistry.Get("ViT-B-16").ParameterCount);
        Assert.Equal(427_616_513L, ModelRegistry.Get("ViT-L-14").ParameterCount);
        Assert.Equal(102_007_137L, ModelRegistry.Get("RN50").ParameterCount);
        Assert.Equal(119_688_033L, ModelRegistry.Get("RN101").ParameterCount);
    }

    [Fact]
    public void Fixture_parameter_counts_match_their_configs()
    {
        // config.json "derived.n_params" of the tiny references.
        Assert.Equal(513_609L, ModelRegistry.Get("tiny-vit").ParameterCount);
        Assert.Equal(732_549L, ModelRegistry.Get("tiny-rn").ParameterCount);
    }

    [Theory]
    [InlineData("ViT-B-32")]
    [InlineData("RN50")]
    [InlineData("tiny-vit")]
    [InlineData("tiny-rn")]
    [InlineData("RN50x4-quickgelu")]
    public void Key_table_equals_state_dict(string name)
    {
        var info = ModelRegistry.Get(name);
        using var model = info.Create();
        var state = model.state_dict();
        var fromModel = state.Select(kv => (kv.Key, Shape: string.Join(",", kv.Value.shape), DType: kv.Value.dtype == torch.ScalarType.Int64 ? "int64" : "float32")).OrderBy(x => x.Key, StringComparer.Ordinal).ToList();
        var fromTable = info.Keys.Select(k => (k.Key, Shape: string.Join(",", k.Shape), k.DType)).OrderBy(x => x.Key, StringComparer.Ordinal).ToList();
        Assert.Equal(fromTable, fromModel);
        // The generated table is the planner's table.
        Assert.Equal(KeyTable.Build(info.Spec), info.Keys);
        var trainable = model.parameters().Sum(p => p.numel());
        Assert.Equal(info.ParameterCount, trainable);
    }

    [Fact]
    public void Every_builtin_key_table_matches_planner_and_openai_names()
    {
        foreach (var info in ModelRegistry.All)
        {
            Assert.Equal(KeyTable.Build(info.Spec), info.Keys);
            Assert.Contains(info.Keys, k => k.Key == "logit_scale");
            Assert.Contains(info.Keys, k => k.Key == "ln_final.weight");
            if (info.Spec.Vision.Kind == VisionKind.VisionTransformer)
                Assert.Contains(info.Keys, k => k.Key == "visual.transformer.resblocks.0.attn.in_proj_weight");
            else
            {
                Assert.Contains(info.Keys, k => k.Key == "visual.layer1.0.downsample.0.weight");
                Assert.Contains(info.Keys, k => k.Key == "visual.attnpool.c_proj.bias");
            }
        }
    }

    [Fact]
    public void Registry_knows_openai_aliases_and_open_clip_names()
    {
        Assert.Equal("ViT-B-32-quickgelu", ModelRegistry.Get("ViT-B/32").Name);
        Assert.Equal("ViT-L-14-336-quickgelu", ModelRegistry.Get("ViT-L/14@336px").Name);
        Assert.Equal(ActivationKind.Gelu, ModelRegistry.Get("ViT-B-32").Spec.Activation);
        Assert.Equal(ActivationKind.QuickGelu, ModelRegistry.Get("ViT-B-32-quickgelu").Spec.Activation);
        Assert.Equal(336, ModelRegistry.Get("ViT-L-14-336").Spec.Vision.ImageSize);
        Assert.Equal(16, ClipPlan.From(ModelRegistry.Get("ViT-H-14").Spec).VisionHeads);
        Assert.Equal(6144, ClipPlan.From(ModelRegistry.Get("ViT-g-14").Spec).VisionMlpWidth);
        Assert.Equal(8192, ClipPlan.From(ModelRegistry.Get("ViT-bigG-14").Spec).VisionMlpWidth);
        Assert.Equal(32, ClipPlan.From(ModelRegistry.Get("RN50").Spec).VisionHeads);
        var e = Assert.Throws<ClipGenException>(() => ModelRegistry.Get("ViT-B-33"));
        Assert.Contains("did you mean", e.Message);
        foreach (var name in new[] { "RN50", "RN101", "RN50x4", "RN50x16", "RN50x64", "ViT-B-32", "ViT-B-16", "ViT-L-14", "ViT-L-14-336", "ViT-H-14", "ViT-g-14", "ViT-bigG-14" })
        {
            Assert.NotNull(ModelRegistry.Find(name));
            if (name is not ("ViT-g-14" or "ViT-bigG-14")) Assert.NotNull(ModelRegistry.Find(name + "-quickgelu"));
        }
    }
}
