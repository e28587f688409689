using ClipGen.Backends;
using ClipGen.Modeling;
using ClipGen.Onnx;
using ClipGen.Specs;
using Microsoft.ML.OnnxRuntime;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace ClipGen.Tests.Onnx;

/// <summary>Export per spec: the spec → hyper bridge, self-describing files, every built-in spec loads in ORT.</summary>
public class ExportPerSpecTests(ITestOutputHelper output)
{
    static readonly OnnxClipSessionOptions Cpu = new() { IntraOpNumThreads = 1 };

    public static TheoryData<string> BuiltIns => new(ModelRegistry.All.Where(m => m.ModelType.Assembly == typeof(ClipModule).Assembly).Select(m => m.Name));

    [Fact]
    public void Generated_spec_objects_equal_the_specs_resolved_from_their_yaml_files()
    {
        // The generator writes each spec as a C# object; reading the same file at run time must give an equal record.
        var specsDir = Path.Combine(Fixtures.RepoRoot, "specs");
        var builtIns = ModelRegistry.All.Where(m => m.ModelType.Assembly == typeof(ClipModule).Assembly).ToList();
        Assert.NotEmpty(builtIns);
        foreach (var m in builtIns)
        {
            var file = Directory.GetFiles(specsDir, "*.yaml").Single(f => SpecDocument.Parse(f, File.ReadAllText(f)).Name == m.Name);
            var fromYaml = SpecResolver.ResolveSingle(file, File.ReadAllText(file), ModelRegistry.Library);
            Assert.Equal(fromYaml with { Extends = "" }, m.Spec with { Extends = "" });
            Assert.Equal(ClipPlan.From(m.Spec), m.ModelType.GetProperty("ModelPlan")!.GetValue(null));
        }
    }

    [Fact]
    public void Export_writes_three_self_describing_files_that_reproduce_the_model()
    {
        var dir = TestUtil.TempDir();
        using var model = ClipModelFactory.Load("tiny-vit", Fixtures.Path_("reference", "openai", "tiny-vit", "model.safetensors"));
        var files = ((Models.TinyVit)model).ExportOnnx(dir);
        Assert.Equal(["image.onnx", "text.onnx", "clip.onnx"], files.Select(Path.GetFileName));
        var meta = OnnxModelInfo.Load(Path.Combine(dir, "clip.onnx")).Metadata;
        Assert.Equal("tiny-vit", meta[ClipOnnxNames.MetaSpecName]);
        Assert.Equal("32", meta[ClipOnnxNames.MetaEmbedDim]);
        Assert.Equal("32", meta[ClipOnnxNames.MetaImageSize]);
        Assert.Equal("77", meta[ClipOnnxNames.MetaContextLength]);
        Assert.Equal("quick_gelu", meta[ClipOnnxNames.MetaActivation]);
        Assert.Equal("clip_bpe", meta[ClipOnnxNames.MetaTokenizer]);
        Assert.Equal("0.48145466,0.4578275,0.40821073", meta[ClipOnnxNames.MetaMean]);
        Assert.Equal("0.26862954,0.26130258,0.27577711", meta[ClipOnnxNames.MetaStd]);
        Assert.Equal(model.LogitScale.ToSingle(), float.Parse(meta[ClipOnnxNames.MetaLogitScale], System.Globalization.CultureInfo.InvariantCulture));
        // The embedded YAML resolves back to the very same spec.
        Assert.Equal(model.Spec, SpecResolver.ResolveSingle("<onnx>", meta[ClipOnnxNames.MetaSpecYaml]));

        // The exported folder alone (no spec, no checkpoint) gives the reference outputs.
        using var backend = OnnxClipBackend.Open(dir, new ClipBackendOptions { Session = Cpu });
        Assert.Equal(model.Spec, backend.Spec);
        using var inputs = TestUtil.Read(Fixtures.Path_("reference", "openai", "tiny-vit", "inputs.safetensors"));
        using var expected = TestUtil.Read(Fixtures.Path_("reference", "openai", "tiny-vit", "outputs.safetensors"));
        using var img = backend.EncodeImage(inputs.Tensors["pixel_values"]);
        using var txt = backend.EncodeText(inputs.Tensors["input_ids"]);
        var (perImage, perText) = backend.Logits(img, txt);
        TestUtil.AssertClose(expected.Tensors["image_features"], img, "image_features");
        TestUtil.AssertClose(expected.Tensors["text_features"], txt, "text_features");
        TestUtil.AssertClose(expected.Tensors["logits_per_image"], perImage, "logits_per_image");
        TestUtil.AssertClose(expected.Tensors["logits_per_text"], perText, "logits_per_text");
    }

    [Theory]
    [MemberData(nameof(BuiltIns))]
    public void Every_builtin_spec_exports_and_ORT_loads_it(string name)
    {
        // Placeholder weights: the real graph and initializer shapes, with the data a sparse file of zeros (no memory, no disk).
        // ORT parses the graph, infers every type and shape, and maps the external data; optimisation is off so that nothing
        // folds (and materialises) the 1.7–10 GB of zeros.
        var info = ModelRegistry.Get(name);
        var dir = TestUtil.TempDir();
        var build = (Func<ClipOnnxKind, OnnxExportOptions?, OnnxGraphBuilder>)Delegate.CreateDelegate(typeof(Func<ClipOnnxKind, OnnxExportOptions?, OnnxGraphBuilder>),
            info.ModelType.GetMethod("BuildOnnxGraph")!);
        var b = build(ClipOnnxKind.Full, null);
        var path = Path.Combine(dir, "clip.onnx");
        var data = b.Save(path);
        Assert.NotNull(data);
        var model = OnnxModelInfo.Load(path);
        var keys = info.Keys.Where(k => !k.Key.EndsWith("num_batches_tracked", StringComparison.Ordinal)).ToList();
        Assert.Equal(keys.Select(k => k.Key).Order(StringComparer.Ordinal), model.Initializers.Select(i => i.Name).Order(StringComparer.Ordinal));
        var shapes = model.Initializers.ToDictionary(i => i.Name, i => i.Dims);
        Assert.All(keys, k => Assert.Equal(k.Shape.ToArray(), shapes[k.Key]));
        long dataBytes = new FileInfo(data!).Length, weightBytes = keys.Sum(k => k.Elements) * 4;
        Assert.InRange(dataBytes, weightBytes, weightBytes + (long)keys.Count * 4096);   // plus at most the alignment padding

        using var so = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_DISABLE_ALL, IntraOpNumThreads = 1 };
        so.AddSessionConfigEntry("session.disable_prepacking", "1");
        using var session = new InferenceSession(path, so);
        var px = session.InputMetadata[ClipOnnxNames.PixelValues].Dimensions;
        Assert.Equal([-1, 3, info.Spec.Vision.ImageSize, info.Spec.Vision.ImageSize], px);
        Assert.Equal([-1, info.Spec.Text.ContextLength], session.InputMetadata[ClipOnnxNames.InputIds].Dimensions);
        Assert.Equal([-1, info.Spec.EmbedDim], session.OutputMetadata[ClipOnnxNames.ImageFeatures].Dimensions);
        output.WriteLine($"{name}: {model.OpTypes.Count} nodes, {model.Initializers.Count} initializers, {new FileInfo(data!).Length / 1e9:0.00} GB of sparse zeros, working set {Environment.WorkingSet / 1e6:0} MB");
        Directory.Delete(dir, recursive: true);
    }

    [Theory]
    [InlineData("ViT-B-32")]
    [InlineData("RN50")]
    public void Random_weight_export_of_a_builtin_matches_torch(string name)
    {
        // A real export (random weights, 600 / 400 MB) through the public backend switch; ORT with all optimisations.
        torch.manual_seed(1);
        using var model = ClipModelFactory.Create(name);
        model.eval();
        using var scope = NewDisposeScope();
        var (pixels, ids) = ClipGen.Tests.Onnx.BackendParity.RandomInputs(model.Spec, batch: 2, seed: 3);
        using var torchBackend = ClipBackends.Create(model, BackendKind.Torch);
        using var ortBackend = ClipBackends.Create(model, BackendKind.Onnx, new ClipBackendOptions { Session = new() { IntraOpNumThreads = 2 } });
        var t = torchBackend.Forward(pixels, ids);
        var o = ortBackend.Forward(pixels, ids);
        var ti = torchBackend.EncodeImage(pixels);
        var oi = ortBackend.EncodeImage(pixels);
        var tt = torchBackend.EncodeText(ids);
        var ot = ortBackend.EncodeText(ids);
        output.WriteLine($"{name}: image {TestUtil.AssertClose(ti, oi, "image_features"):E2}, text {TestUtil.AssertClose(tt, ot, "text_features"):E2}, " +
                         $"logits {TestUtil.AssertClose(t.LogitsPerImage, o.LogitsPerImage, "logits_per_image"):E2}");
        TestUtil.AssertClose(t.LogitsPerText, o.LogitsPerText, "logits_per_text");
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(7)]
    public void Torch_concurrent_runs_split_the_batch_and_give_the_reference_features(int concurrentRuns)
    {
        using var model = ClipModelFactory.Load("tiny-vit", Fixtures.Path_("reference", "openai", "tiny-vit", "model.safetensors"));
        using var inputs = TestUtil.Read(Fixtures.Path_("reference", "openai", "tiny-vit", "inputs.safetensors"));
        using var outputs = TestUtil.Read(Fixtures.Path_("reference", "openai", "tiny-vit", "outputs.safetensors"));
        using var single = ClipBackends.Create(model, BackendKind.Torch);
        using var split = ClipBackends.Create(model, BackendKind.Torch, new ClipBackendOptions { TorchConcurrentRuns = concurrentRuns });
        using var a = single.EncodeImage(inputs.Tensors["pixel_values"]);
        using var b = split.EncodeImage(inputs.Tensors["pixel_values"]);
        using var t = split.EncodeText(inputs.Tensors["input_ids"]);
        Assert.Equal(a.shape, b.shape);
        Assert.True((a - b).abs().max().item<float>() <= 1e-6f, "splitting the batch changed the image features");
        TestUtil.AssertClose(outputs.Tensors["image_features"], b, "image_features");
        TestUtil.AssertClose(outputs.Tensors["text_features"], t, "text_features");
        Assert.Throws<ClipGenException>(() => ClipBackends.Create(model, BackendKind.Torch, new ClipBackendOptions { TorchConcurrentRuns = 0 }));
    }

    [Fact]
    public void Placeholder_graphs_refuse_ToBytes_and_Never()
    {
        var b = ClipOnnxExporter.BuildPlaceholderGraph(Models.TinyVit.ModelSpec, ClipOnnxKind.Image);
        Assert.True(b.HasPlaceholders);
        Assert.Throws<InvalidOperationException>(() => b.ToBytes());
        Assert.Throws<InvalidOperationException>(() => b.Save(Path.Combine(TestUtil.TempDir(), "x.onnx"), new OnnxSaveOptions { ExternalData = OnnxExternalDataMode.Never }));
    }

    [Fact]
    public void Typed_backend_rejects_another_models_backend_and_runs_typed_values()
    {
        using var tinyVit = ClipModelFactory.Load("tiny-vit", Fixtures.Path_("reference", "openai", "tiny-vit", "model.safetensors"));
        using var tinyRn = ClipModelFactory.Create("tiny-rn");
        using var rnBackend = ClipBackends.Create(tinyRn, BackendKind.Torch);
        Assert.Throws<ArgumentException>(() => new ClipBackend<Models.TinyVit>(rnBackend));

        using var inputs = TestUtil.Read(Fixtures.Path_("reference", "openai", "tiny-vit", "inputs.safetensors"));
        using var expected = TestUtil.Read(Fixtures.Path_("reference", "openai", "tiny-vit", "outputs.safetensors"));
        foreach (var kind in new[] { BackendKind.Torch, BackendKind.Onnx })
        {
            using var backend = ClipBackends.Create((Models.TinyVit)tinyVit, kind);
            using var px = Pixels<Models.TinyVit>.FromTensor(inputs.Tensors["pixel_values"].alias());
            using var ids = TokenIds<Models.TinyVit>.FromTensor(inputs.Tensors["input_ids"].alias());
            using var img = backend.EncodeImage(px);
            using var txt = backend.EncodeText(ids);
            using var logits = backend.Logits(img, txt);
            TestUtil.AssertClose(expected.Tensors["image_features"], img.Tensor, $"{kind} image_features");
            TestUtil.AssertClose(expected.Tensors["text_features"], txt.Tensor, $"{kind} text_features");
            TestUtil.AssertClose(expected.Tensors["logits_per_image"], logits.LogitsPerImage, $"{kind} logits_per_image");
        }
    }

    [Fact]
    public void Onnx_backend_pads_short_token_rows()
    {
        using var model = ClipModelFactory.Load("tiny-vit", Fixtures.Path_("reference", "openai", "tiny-vit", "model.safetensors"));
        using var inputs = TestUtil.Read(Fixtures.Path_("reference", "openai", "tiny-vit", "inputs.safetensors"));
        var ids = inputs.Tensors["input_ids"];
        // Cut the rows after the longest caption's end token.
        long used = ids.argmax(1).max().ToInt64() + 1;
        using var shortIds = ids.narrow(1, 0, used).contiguous();
        using var torchBackend = ClipBackends.Create(model, BackendKind.Torch);
        using var ortBackend = ClipBackends.Create(model, BackendKind.Onnx);
        using var full = ortBackend.EncodeText(ids);
        using var cut = ortBackend.EncodeText(shortIds);
        using var reference = torchBackend.EncodeText(shortIds);
        TestUtil.AssertClose(reference, cut, "torch [N,L] vs ORT padded");
        TestUtil.AssertClose(full, cut, "ORT [N,C] vs ORT padded");
    }
}
