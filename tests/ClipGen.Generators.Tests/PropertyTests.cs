using System.Globalization;
using System.Reflection;
using System.Text;
using ClipGen.Modeling;
using ClipGen.Specs;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ClipGen.Generators.Tests;

/// <summary>A small valid spec: a ViT or a ModifiedResNet with tiny widths, drawn by <see cref="SpecArbitraries"/>.</summary>
public sealed record RandomSpec(
    bool ResNet, bool Gelu, int ImageSize, int PatchSize, int VisionWidth, int HeadWidth, string Layers,
    int EmbedDim, int ContextLength, int VocabSize, int TextHeads, int TextHeadDim, int TextLayers)
{
    public int TextWidth => TextHeads * TextHeadDim;

    public string ToYaml(string name, string className)
    {
        var b = new StringBuilder();
        b.Append("name: ").Append(name).Append('\n');
        b.Append("class_name: ").Append(className).Append('\n');
        b.Append("embed_dim: ").Append(I(EmbedDim)).Append('\n');
        b.Append("activation: ").Append(Gelu ? "gelu" : "quick_gelu").Append('\n');
        b.Append("init_logit_scale: 2.6592600369262695\n");
        b.Append("vision:\n");
        b.Append("  image_size: ").Append(I(ImageSize)).Append('\n');
        if (!ResNet) b.Append("  patch_size: ").Append(I(PatchSize)).Append('\n');
        b.Append("  layers: ").Append(Layers).Append('\n');
        b.Append("  width: ").Append(I(VisionWidth)).Append('\n');
        b.Append("  head_width: ").Append(I(HeadWidth)).Append('\n');
        b.Append("text:\n");
        b.Append("  context_length: ").Append(I(ContextLength)).Append('\n');
        b.Append("  vocab_size: ").Append(I(VocabSize)).Append('\n');
        b.Append("  width: ").Append(I(TextWidth)).Append('\n');
        b.Append("  heads: ").Append(I(TextHeads)).Append('\n');
        b.Append("  layers: ").Append(I(TextLayers)).Append('\n');
        b.Append("tokenizer:\n  kind: bytes\n");
        b.Append("preprocess:\n  mean: [0.5, 0.5, 0.5]\n  std: [0.25, 0.25, 0.25]\n  interpolation: bilinear\n  resize_mode: squash\n");
        return b.ToString();
    }

    public ClipSpec Resolve(string name = "random", string className = "Random") => SpecResolver.ResolveSingle(name + ".yaml", ToYaml(name, className));

    static string I(int v) => v.ToString(CultureInfo.InvariantCulture);
}

/// <summary>A few random specs compiled together (one Roslyn compilation per batch keeps the property fast).</summary>
public sealed record SpecBatch(RandomSpec[] Specs)
{
    public override string ToString() => "[" + string.Join(", ", Specs.Select(s => s.ToString())) + "]";
}

public static class SpecArbitraries
{
    static Gen<RandomSpec> Vit =>
        from gelu in Gen.Elements(true, false)
        from headWidth in Gen.Elements(4, 8)
        from heads in Gen.Choose(1, 2)
        from patch in Gen.Elements(4, 8)
        from grid in Gen.Choose(1, 3)
        from layers in Gen.Choose(1, 2)
        from text in Text
        select text with { ResNet = false, Gelu = gelu, ImageSize = patch * grid, PatchSize = patch, VisionWidth = headWidth * heads, HeadWidth = headWidth, Layers = layers.ToString(CultureInfo.InvariantCulture) };

    static Gen<RandomSpec> ResNet =>
        from gelu in Gen.Elements(true, false)
        from width in Gen.Elements(8, 16)
        from headWidth in Gen.Elements(32, 64, 128) // divides the attention-pool width (width·32 = 256 or 512)
        from image in Gen.Elements(32, 64)
        from layers in Gen.ArrayOf(Gen.Choose(1, 2), 4)
        from text in Text
        select text with { ResNet = true, Gelu = gelu, ImageSize = image, PatchSize = 0, VisionWidth = width, HeadWidth = headWidth, Layers = "[" + string.Join(", ", layers) + "]" };

    static Gen<RandomSpec> Text =>
        from embed in Gen.Choose(4, 16)
        from context in Gen.Choose(4, 16)
        from vocab in Gen.Choose(10, 100)
        from heads in Gen.Choose(1, 2)
        from headDim in Gen.Elements(4, 8)
        from layers in Gen.Choose(1, 2)
        select new RandomSpec(false, false, 0, 0, 0, 0, "", embed, context, vocab, heads, headDim, layers);

    static Gen<RandomSpec> Any => Gen.OneOf(Vit, ResNet);

    public static Arbitrary<RandomSpec> Spec() => Any.ToArbitrary();

    public static Arbitrary<SpecBatch> Batch() =>
        (from n in Gen.Choose(1, 3) from specs in Gen.ArrayOf(Any, n) select new SpecBatch(specs)).ToArbitrary();
}

/// <summary>
/// FsCheck properties over random small specs: the planner's key table is the module's state_dict, and a generated
/// model computes exactly what the run-time model of the same spec computes.
/// </summary>
public class PropertyTests
{
    static string DType(ScalarType t) => t switch
    {
        ScalarType.Float32 => "float32",
        ScalarType.Int64 => "int64",
        _ => t.ToString(),
    };

    /// <summary>The key table as (key, shape, dtype) strings, in order, for exact comparison.</summary>
    static List<string> Rows(IEnumerable<KeyEntry> keys) => keys.Select(k => k.Key + " [" + string.Join(",", k.Shape) + "] " + k.DType).ToList();

    static List<string> Rows(nn.Module module) =>
        module.state_dict().Select(kv => kv.Key + " [" + string.Join(",", kv.Value.shape) + "] " + DType(kv.Value.dtype)).ToList();

    /// <summary>
    /// The key table is in PyTorch's state_dict order (per module: its parameters, its buffers, then its children).
    /// TorchSharp's <c>state_dict()</c> lists every parameter first, then every buffer; this reorders the table the same way.
    /// </summary>
    static IEnumerable<KeyEntry> TorchSharpOrder(IReadOnlyList<KeyEntry> keys) =>
        keys.Where(k => k.Kind == KeyKind.Parameter).Concat(keys.Where(k => k.Kind == KeyKind.Buffer));

    static void AssertSameRows(List<string> expected, List<string> actual, string what)
    {
        var first = Enumerable.Range(0, Math.Min(expected.Count, actual.Count)).FirstOrDefault(i => expected[i] != actual[i], -1);
        Assert.True(first < 0 && expected.Count == actual.Count,
            $"{what}: {expected.Count} vs {actual.Count} entries" + (first >= 0 ? $"; first difference at #{first}: expected '{expected[first]}', actual '{actual[first]}'" : ""));
    }

    [Property(MaxTest = 40, Arbitrary = new[] { typeof(SpecArbitraries) })]
    public void Key_table_equals_the_runtime_state_dict(RandomSpec random)
    {
        var spec = random.Resolve();
        using var model = new RuntimeClipModel(spec);
        AssertSameRows(Rows(TorchSharpOrder(KeyTable.Build(spec))), Rows(model), random.ToString());
        Assert.Equal(KeyTable.ParameterCount(spec), model.parameters().Sum(p => p.numel()));
    }

    [Property(MaxTest = 200, Arbitrary = new[] { typeof(SpecArbitraries) })]
    public void Canonical_yaml_round_trips(RandomSpec random)
    {
        // The generated ModelSpec is resolved from SpecYamlWriter's output, so it must read back as the same spec.
        var spec = random.Resolve();
        Assert.Equal(spec, SpecResolver.ResolveSingle("again.yaml", SpecYamlWriter.Write(spec)));
    }

    [Fact]
    public void Generated_keys_of_built_in_models_equal_the_key_table()
    {
        // The ClipGen runtime compiles specs/*.yaml with this generator: its models' Keys are generated code.
        foreach (var info in new[] { typeof(ClipGen.Models.ViT_B_32), typeof(ClipGen.Models.RN50), typeof(ClipGen.Models.ViT_B_32_quickgelu) })
        {
            var spec = (ClipSpec)info.GetProperty("ModelSpec", BindingFlags.Public | BindingFlags.Static)!.GetValue(null)!;
            var keys = (IReadOnlyList<KeyEntry>)info.GetProperty("Keys", BindingFlags.Public | BindingFlags.Static)!.GetValue(null)!;
            AssertSameRows(Rows(KeyTable.Build(spec)), Rows(keys), info.Name);
            Assert.Equal(KeyTable.Build(spec), keys); // kinds too
            Assert.Equal(spec, SpecResolver.ResolveSingle(info.Name + ".yaml", File.ReadAllText(Path.Combine(GeneratorHarness.RepoRoot, "specs", spec.Name + ".yaml")),
                Directory.GetFiles(Path.Combine(GeneratorHarness.RepoRoot, "specs"), "*.yaml").Select(p => SpecDocument.Parse(p, File.ReadAllText(p)))) with { Extends = spec.Extends });
        }
    }

    [Fact]
    public void Generated_tiny_models_have_the_key_table_as_state_dict()
    {
        var run = GeneratorHarness.Run(("/specs/a.yaml", TinySpecs.Vit), ("/specs/b.yaml", TinySpecs.ResNet));
        var (asm, alc) = GeneratorHarness.EmitAndLoad(run.Compilation);
        try
        {
            foreach (var name in new[] { "TinyA", "TinyB" })
            {
                var type = asm.GetType(GeneratorHarness.ModelsNamespace + "." + name, throwOnError: true)!;
                using var model = (ClipModule)Activator.CreateInstance(type)!;
                var keys = (IReadOnlyList<KeyEntry>)type.GetProperty("Keys")!.GetValue(null)!;
                AssertSameRows(Rows(KeyTable.Build(model.Spec)), Rows(keys), name + ".Keys");
                AssertSameRows(Rows(TorchSharpOrder(keys)), Rows(model), name + " state_dict");
            }
        }
        finally { alc.Unload(); }
    }

    [Property(MaxTest = 4, Arbitrary = new[] { typeof(SpecArbitraries) })]
    public void Generated_and_runtime_models_agree(SpecBatch batch)
    {
        var specs = batch.Specs.Select((s, i) => (Random: s, Name: "random-" + i, Class: "Random" + i)).ToList();
        var run = GeneratorHarness.Run(specs.Select(s => ("/specs/" + s.Name + ".yaml", s.Random.ToYaml(s.Name, s.Class))).ToArray());
        Assert.Empty(run.Diagnostics);
        var (asm, alc) = GeneratorHarness.EmitAndLoad(run.Compilation);
        try
        {
            foreach (var s in specs)
            {
                var spec = s.Random.Resolve(s.Name, s.Class);
                var type = asm.GetType(GeneratorHarness.ModelsNamespace + "." + s.Class, throwOnError: true)!;
                Assert.Equal(spec, ((ClipSpec)type.GetProperty("ModelSpec")!.GetValue(null)!) with { Extends = "" });
                var keys = (IReadOnlyList<KeyEntry>)type.GetProperty("Keys")!.GetValue(null)!;
                Assert.Equal(KeyTable.Build(spec), keys);

                using var generated = (ClipModule)Activator.CreateInstance(type)!;
                using var runtime = new RuntimeClipModel(spec);
                using (no_grad()) generated.load_state_dict(runtime.state_dict(), strict: true);
                generated.eval();
                runtime.eval();

                using var scope = NewDisposeScope();
                using var _ = no_grad();
                var pixels = randn(2, 3, spec.Vision.ImageSize, spec.Vision.ImageSize);
                var tokens = randint(spec.Text.VocabSize, new long[] { 2, spec.Text.ContextLength }, dtype: ScalarType.Int64);
                AssertSame(runtime.EncodeImage(pixels), generated.EncodeImage(pixels), s.Random + " EncodeImage");
                AssertSame(runtime.EncodeText(tokens), generated.EncodeText(tokens), s.Random + " EncodeText");
            }
        }
        finally { alc.Unload(); }
    }

    static void AssertSame(Tensor expected, Tensor actual, string what)
    {
        Assert.Equal(expected.shape, actual.shape);
        var diff = (expected - actual).abs().max().item<float>();
        var scale = Math.Max(1f, expected.abs().max().item<float>());
        Assert.True(diff <= 1e-6f * scale, $"{what}: max |diff| {diff:E3}");
    }
}
