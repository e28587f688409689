using System.Text.Json;
using ClipGen.Backends;
using ClipGen.Checkpoints;
using ClipGen.Modeling;
using ClipGen.Specs;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace ClipGen.Tests.Models;

/// <summary>
/// The seven families of ../shared/fixtures/reference/open_clip/families (open_clip 2.32 + timm 1.0.15, random weights) are
/// reproduced on both backends from a spec inferred from their open_clip_config.json and from a spec written by hand, and the
/// full-size specs have open_clip's parameter counts, keys and shapes (census.json). Tolerance: max |diff| ≤ 1e-4·max(1, max|ref|).
/// </summary>
public class FamilyTests(ITestOutputHelper output)
{
    public static readonly string[] Families =
        ["siglip-b16", "siglip2-b16", "siglip-so400m-p14", "siglip-i18n-noproj", "clipa-l14", "layerscale-m16", "vit-quickgelu-mlp"];

    public static TheoryData<string> FamilyNames => new(Families);

    static string Folder(string family) => Fixtures.Path_("reference", "open_clip", "families", family);

    [Theory]
    [MemberData(nameof(FamilyNames))]
    public void Inferred_spec_reproduces_the_family_on_both_backends(string family)
    {
        using var checkpoint = ClipCheckpoint.Open(Folder(family));
        var inferred = SpecInference.Infer(checkpoint, family);
        output.WriteLine(string.Join("\n", inferred.Notes));
        using var model = ClipModelFactory.Load(inferred.Spec, Folder(family));
        Compare(model, family, "inferred");
    }

    [Theory]
    [MemberData(nameof(FamilyNames))]
    public void Hand_written_spec_reproduces_the_family_on_both_backends(string family)
    {
        // The compiled-in (generated) class of the hand-written spec, and the same YAML loaded at run time.
        using var generated = ClipModelFactory.Load("family-" + family, Folder(family));
        Assert.IsNotType<RuntimeClipModel>(generated);
        Compare(generated, family, "generated");
        using var runtime = ClipModelFactory.Load(Path.Combine(AppContext.BaseDirectory, "specs", "family-" + family + ".yaml"), Folder(family));
        Assert.IsType<RuntimeClipModel>(runtime);
        Compare(runtime, family, "yaml");
    }

    [Theory]
    [MemberData(nameof(FamilyNames))]
    public void Inferred_spec_equals_the_hand_written_one_in_architecture(string family)
    {
        var inferred = SpecInference.Infer(Folder(family), family).Spec;
        var hand = ModelRegistry.Get("family-" + family).Spec;
        // Same plan: every derived number, block option and key in every layout (names, tokenizers and initial values aside).
        static ClipPlan Plan(ClipSpec s) => ClipPlan.From(s with { Name = "x", ClassName = "X", Tokenizer = new TokenizerSpec { Kind = "bytes" }, InitLogitScale = 0 });
        var (a, b) = (Plan(hand), Plan(inferred));
        Assert.Equal(a.Vision, b.Vision);
        Assert.Equal(a.Text with { EosId = 0, PadId = 0 }, b.Text with { EosId = 0, PadId = 0 });
        Assert.Equal(a with { Vision = b.Vision, Text = b.Text }, b);
        Assert.Equal(hand.Vision.Activation, inferred.Vision.Activation);
        Assert.Equal(hand.Text.Activation, inferred.Text.Activation);
        Assert.Equal(hand.Preprocess, inferred.Preprocess);
    }

    [Theory]
    [MemberData(nameof(FamilyNames))]
    public void Cli_infer_reproduces_the_family_from_the_folder_alone(string family)
    {
        foreach (var backend in new[] { "torch", "onnx" })
        {
            var dir = TestUtil.TempDir();
            var outPath = Path.Combine(dir, "out.safetensors");
            var (code, _, err) = TestUtil.Cli("infer", "--weights", Folder(family), "--inputs", Path.Combine(Folder(family), "inputs.safetensors"),
                "--output", outPath, "--backend", backend);
            Assert.True(code == 0, err);
            using var expected = TestUtil.Read(Path.Combine(Folder(family), "outputs.safetensors"));
            using var actual = TestUtil.Read(outPath);
            foreach (var key in expected.Tensors.Keys)
                TestUtil.AssertClose(expected.Tensors[key], actual.Tensors[key], $"{family} {backend} {key}");
        }
    }

    [Theory]
    [MemberData(nameof(FamilyNames))]
    public void Converted_to_every_layout_that_holds_it_the_family_still_reproduces(string family)
    {
        // open_clip → OpenAI names → Hugging Face (CLIPModel or SiglipModel, when one holds it) → open_clip again; each folder loads
        // with the spec inferred from the config written beside it, and gives the reference outputs.
        var spec = SpecInference.Infer(Folder(family), family).Spec;
        var plan = ClipPlan.From(spec);
        var dir = TestUtil.TempDir();
        var source = Folder(family);
        var targets = new List<ConversionTarget> { ConversionTarget.OpenAI };
        if (plan.Supports(WeightLayout.HuggingFace, out var why)) targets.Add(ConversionTarget.HuggingFace);
        else output.WriteLine($"{family}: no Hugging Face layout ({why})");
        targets.Add(ConversionTarget.OpenClip);
        foreach (var target in targets)
        {
            var folder = Path.Combine(dir, target.ToString());
            CheckpointConverter.Convert(spec, source, target, folder);
            using var model = target == ConversionTarget.OpenAI
                ? ClipModelFactory.Load(Path.Combine(folder, spec.Name + ".yaml"), Path.Combine(folder, "model.safetensors"))
                : ClipModelFactory.Load(folder);
            using var checkpoint = ClipCheckpoint.Open(target == ConversionTarget.OpenAI ? Path.Combine(folder, "model.safetensors") : folder);
            Assert.Equal(CheckpointConverter.Layout(target) == WeightLayout.OpenClip && !spec.CustomText && spec.Vision.TimmModelName.Length == 0
                ? WeightLayout.OpenAI : CheckpointConverter.Layout(target), checkpoint.Layout);
            CompareTorch(model, family, target.ToString());
            source = folder;   // the next conversion starts from this one
        }
        // SigLIP's families are held by Hugging Face's SiglipModel (not the one without a text head), the QuickGELU ViT by CLIPModel,
        // CLIPA's (mean pooling) and LayerScale's by neither.
        Assert.Equal((family.StartsWith("siglip", StringComparison.Ordinal) && family != "siglip-i18n-noproj") || family == "vit-quickgelu-mlp",
            targets.Contains(ConversionTarget.HuggingFace));
    }

    void CompareTorch(ClipModule model, string family, string how)
    {
        using var inputs = TestUtil.Read(Path.Combine(Folder(family), "inputs.safetensors"));
        using var outputs = TestUtil.Read(Path.Combine(Folder(family), "outputs.safetensors"));
        using var _ = no_grad();
        using var img = model.EncodeImage(inputs.Tensors["pixel_values"]);
        using var txt = model.EncodeText(inputs.Tensors["input_ids"]);
        TestUtil.AssertClose(outputs.Tensors["image_features"], img, $"{family} {how} image_features");
        TestUtil.AssertClose(outputs.Tensors["text_features"], txt, $"{family} {how} text_features");
    }

    [Theory]
    [MemberData(nameof(FamilyNames))]
    public void Parameter_count_equals_open_clips(string family)
    {
        using var notes = JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder(family), "NOTES.json")));
        var expected = notes.RootElement.GetProperty("params").GetInt64();
        Assert.Equal(expected, ModelRegistry.Get("family-" + family).ParameterCount);
    }

    public static TheoryData<string> CensusNames()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Fixtures.Path_("reference", "open_clip", "census.json")));
        return new(doc.RootElement.EnumerateObject().Select(p => p.Name).ToList());
    }

    [Theory]
    [MemberData(nameof(CensusNames))]
    public void Built_in_spec_has_open_clips_parameters_keys_and_shapes(string name)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Fixtures.Path_("reference", "open_clip", "census.json")));
        var entry = doc.RootElement.GetProperty(name);
        var info = ModelRegistry.Get(name);
        var plan = ClipPlan.From(info.Spec);
        Assert.Equal(entry.GetProperty("params").GetInt64(), plan.ParameterCount);
        Assert.Equal(entry.GetProperty("params_visual").GetInt64(), plan.VisionParameterCount);
        // open_clip's own state_dict, key by key: the plan's open_clip layout (CLIP or CustomTextCLIP, timm names) must be exactly it.
        var census = entry.GetProperty("keys").EnumerateArray()
            .ToDictionary(k => k[0].GetString()!, k => k[1].EnumerateArray().Select(x => x.GetInt64()).ToArray());
        var ours = KeyMapping.For(plan, WeightLayout.OpenClip)
            .SelectMany(m => m.Sources.Zip(m.SourceShapes))
            .ToDictionary(x => x.First, x => x.Second);
        Assert.Equal(census.Keys.Order(StringComparer.Ordinal), ours.Keys.Order(StringComparer.Ordinal));
        foreach (var (key, shape) in census) Assert.True(shape.SequenceEqual(ours[key]), $"{key}: open_clip [{string.Join(",", shape)}], ours [{string.Join(",", ours[key])}]");
    }

    void Compare(ClipModule model, string family, string how)
    {
        using var inputs = TestUtil.Read(Path.Combine(Folder(family), "inputs.safetensors"));
        using var outputs = TestUtil.Read(Path.Combine(Folder(family), "outputs.safetensors"));
        var px = inputs.Tensors["pixel_values"];
        var ids = inputs.Tensors["input_ids"];
        foreach (var kind in new[] { BackendKind.Torch, BackendKind.Onnx })
        {
            using var backend = ClipBackends.Create(model, kind);
            using var _ = no_grad();
            using var img = backend.EncodeImage(px);
            using var txt = backend.EncodeText(ids);
            var (perImage, perText) = backend.Logits(img, txt);
            using (perImage)
            using (perText)
            {
                var d1 = TestUtil.AssertClose(outputs.Tensors["image_features"], img, $"{family} {how} {kind} image_features");
                var d2 = TestUtil.AssertClose(outputs.Tensors["text_features"], txt, $"{family} {how} {kind} text_features");
                var d3 = TestUtil.AssertClose(outputs.Tensors["logits_per_image"], perImage, $"{family} {how} {kind} logits_per_image");
                var d4 = TestUtil.AssertClose(outputs.Tensors["logits_per_text"], perText, $"{family} {how} {kind} logits_per_text");
                output.WriteLine($"{family} ({how}, {kind}): max |diff| image {d1:E2}, text {d2:E2}, logits {d3:E2} / {d4:E2}");
            }
        }
    }
}
