using ClipGen.Specs;
using ClipGen.Onnx;
using Xunit;
using Xunit.Abstractions;

namespace ClipGen.Tests.Onnx;

/// <summary>The builder's contract: names, scopes, constants, metadata, external data.</summary>
public class OnnxGraphBuilderTests(ITestOutputHelper output)
{
    static readonly OnnxClipSessionOptions Cpu = new() { IntraOpNumThreads = 1 };

    [Theory]
    [InlineData("openai/tiny-vit")]
    [InlineData("openai/tiny-rn")]
    [InlineData("open_clip/tiny-vit-gelu")]
    public void Initializer_names_equal_state_dict_keys(string model)
    {
        using var f = OnnxFixture.Load(model);
        var info = OnnxModelInfo.Parse(ClipOnnxExport.Full(f.Plan, f.Weight).ToBytes());
        var names = info.Initializers.Select(i => i.Name).ToHashSet(StringComparer.Ordinal);
        Assert.Equal(names.Count, info.Initializers.Count);
        // BatchNorm's num_batches_tracked is a training counter that inference never reads; it is the only key left out.
        var keys = f.Model.Entries.Keys.Where(k => !k.EndsWith(".num_batches_tracked", StringComparison.Ordinal)).ToHashSet(StringComparer.Ordinal);
        Assert.Equal(keys.Order(StringComparer.Ordinal), names.Order(StringComparer.Ordinal));
        output.WriteLine($"{model}: {names.Count} initializers = state_dict keys ({f.Model.Entries.Count - keys.Count} num_batches_tracked left out)");

        // Each tower's export holds exactly its own keys.
        var visual = OnnxModelInfo.Parse(ClipOnnxExport.ImageEncoder(f.Plan, f.Weight).ToBytes()).Initializers.Select(i => i.Name).ToHashSet();
        Assert.Equal(keys.Where(k => k.StartsWith("visual.", StringComparison.Ordinal)).Order(), visual.Order());
        var text = OnnxModelInfo.Parse(ClipOnnxExport.TextEncoder(f.Plan, f.Weight).ToBytes()).Initializers.Select(i => i.Name).ToHashSet();
        Assert.Equal(keys.Where(k => !k.StartsWith("visual.", StringComparison.Ordinal) && k != "logit_scale").Order(), text.Order());
    }

    [Fact]
    public void Scopes_prefix_names_like_state_dict_keys()
    {
        var requested = new List<string>();
        OnnxWeight W(string key) { requested.Add(key); return OnnxWeight.FromFloats([1, 1, 1, 1], 2, 2); }
        var b = new OnnxGraphBuilder(weights: W);
        using (b.Scope("visual"))
        using (b.Scope("transformer"))
        using (b.Scope("resblocks.0"))
        using (b.Scope("attn"))
        {
            Assert.Equal("visual.transformer.resblocks.0.attn", b.CurrentScope);
            var p1 = b.Parameter("in_proj_weight");
            var p2 = b.Parameter("in_proj_weight");
            Assert.Same(p1, p2); // read once
        }
        Assert.Equal("", b.CurrentScope);
        Assert.Equal(["visual.transformer.resblocks.0.attn.in_proj_weight"], requested);
        Assert.Equal(["visual.transformer.resblocks.0.attn.in_proj_weight"], b.InitializerNames);
    }

    [Fact]
    public void A_plan_that_does_not_match_the_checkpoint_fails_with_the_key()
    {
        using var f = OnnxFixture.Load("openai/tiny-vit");
        var spec = Models.TinyVit.ModelSpec;
        var wrongWidth = ClipPlan.From(spec with { Vision = spec.Vision with { Width = 32, HeadWidth = 32 } });
        var e = Assert.Throws<ArgumentException>(() => ClipOnnxExport.ImageEncoder(wrongWidth, f.Weight));
        Assert.Contains("visual.conv1.weight", e.Message);
        var wrongMlp = ClipPlan.From(spec with { Text = spec.Text with { MlpRatio = 2 } });
        e = Assert.Throws<ArgumentException>(() => ClipOnnxExport.TextEncoder(wrongMlp, f.Weight));
        Assert.Contains("transformer.resblocks.0.mlp.c_fc.weight", e.Message);
        var wrongContext = ClipPlan.From(spec with { Text = spec.Text with { ContextLength = 64 } });
        e = Assert.Throws<ArgumentException>(() => ClipOnnxExport.Full(wrongContext, f.Weight));
        Assert.Contains("'positional_embedding'", e.Message);
    }

    [Fact]
    public void Scopes_must_close_in_order_and_values_must_not_cross_builders()
    {
        var b = new OnnxGraphBuilder();
        var outer = b.Scope("a");
        var inner = b.Scope("b");
        Assert.Throws<InvalidOperationException>(() => outer.Dispose());
        inner.Dispose();
        outer.Dispose();
        var other = new OnnxGraphBuilder();
        var x = b.Input("x", OnnxElementType.Float, "n", 2);
        Assert.Throws<ArgumentException>(() => other.Relu(x));
        Assert.Throws<InvalidOperationException>(() => b.Input("x", OnnxElementType.Float, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new OnnxGraphBuilder(new OnnxBuilderOptions { Opset = 16 }));
    }

    [Fact]
    public void Constant_cache_emits_each_value_once()
    {
        var b = new OnnxGraphBuilder();
        var x = b.Input("x", OnnxElementType.Float, "n", 4);
        var c1 = b.Const(1.702f);
        var c2 = b.Const(1.702f);
        var s1 = b.Const(new long[] { 0, -1 });
        var s2 = b.Const(new long[] { 0, -1 });
        var i1 = b.Const(2L);
        Assert.Same(c1, c2);
        Assert.Same(s1, s2);
        Assert.NotSame(i1, b.Const(2f)); // same number, other type
        Assert.NotSame(s1, b.Const(new long[] { 0, -2 }));
        var y = b.Reshape(b.Reshape(x * 1.702f, 0, -1), 0, -1); // reuses both constants
        b.Output(y, "y", OnnxElementType.Float, "n", 4);
        Assert.Equal(5, b.ConstantCount);
        Assert.Equal(5, b.NodeOpTypes.Count(t => t == "Constant"));
        Assert.Empty(b.InitializerNames); // constants are nodes, so initializers stay the checkpoint's keys

        using var f = OnnxFixture.Load("openai/tiny-vit");
        var model = global::Onnx.ModelProto.Parser.ParseFrom(ClipOnnxExport.Full(f.Plan, f.Weight).ToBytes());
        var constants = model.Graph.Node.Where(n => n.OpType == "Constant").Select(n => n.Attribute[0].T).ToList();
        var distinct = constants.Select(t => $"{t.DataType}|{string.Join(',', t.Dims)}|{t.RawData.ToBase64()}").Distinct().Count();
        output.WriteLine($"tiny-vit full export: {model.Graph.Node.Count} nodes, {constants.Count} constants, all distinct");
        Assert.Equal(constants.Count, distinct);
    }

    [Fact]
    public void Metadata_round_trips_through_file_and_ort()
    {
        using var f = OnnxFixture.Load("openai/tiny-vit");
        var b = ClipOnnxExport.ImageEncoder(f.Plan, f.Weight);
        b.Metadata["clipgen.model"] = "tiny-vit";
        b.Metadata["note"] = "ünïcode ✓";
        var bytes = b.ToBytes();
        var info = OnnxModelInfo.Parse(bytes);
        Assert.Equal("tiny-vit", info.Metadata["clipgen.model"]);
        Assert.Equal("ünïcode ✓", info.Metadata["note"]);
        Assert.Equal("image", info.Metadata[ClipOnnxNames.MetaKind]);
        Assert.Equal("vit", info.Metadata[ClipOnnxNames.MetaVision]);
        Assert.Equal("32", info.Metadata[ClipOnnxNames.MetaImageSize]);
        Assert.Equal("quick_gelu", info.Metadata[ClipOnnxNames.MetaActivation]);
        Assert.Equal(8, info.IrVersion);
        Assert.Equal(17, info.Opsets[""]);
        using var s = new OnnxClipSession(bytes, Cpu);
        Assert.Equal("ünïcode ✓", s.Metadata["note"]);
        Assert.Equal("32", s.Metadata[ClipOnnxNames.MetaEmbedDim]);
        Assert.Equal((32, 32), (s.ImageSize, s.EmbedDim));
    }

    [Fact]
    public void Forced_external_data_saves_and_reloads()
    {
        using var f = OnnxFixture.Load("openai/tiny-rn");
        var dir = Directory.CreateTempSubdirectory("clipgen-onnx-ext-");
        try
        {
            var path = Path.Combine(dir.FullName, "model.onnx");
            var b = ClipOnnxExport.Full(f.Plan, f.Weight);
            var inline = b.ToBytes();
            var data = b.Save(path, new OnnxSaveOptions { ExternalData = OnnxExternalDataMode.Always });
            Assert.Equal(Path.Combine(dir.FullName, "model.onnx.data"), data);
            var info = OnnxModelInfo.Load(path);
            var ext = info.Initializers.Where(i => i.IsExternal).ToList();
            Assert.NotEmpty(ext);
            Assert.Contains(info.Initializers, i => !i.IsExternal); // small ones (< 1 KiB) stay inline
            foreach (var i in ext)
            {
                Assert.Equal("model.onnx.data", i.ExternalData["location"]);
                Assert.Equal(0, long.Parse(i.ExternalData["offset"]) % 4096);
                Assert.True(long.Parse(i.ExternalData["length"]) >= 1024);
            }
            var modelBytes = new FileInfo(path).Length;
            output.WriteLine($"inline {inline.Length} bytes; external: model {modelBytes} + data {new FileInfo(data!).Length} bytes, {ext.Count} tensors outside");
            Assert.True(modelBytes < inline.Length / 4);

            using var s = new OnnxClipSession(path, Cpu);
            var r = s.Run(f.Pixels, f.ImageBatch, f.Ids, f.TextBatch);
            var diff = Diff.MaxAbs(r.LogitsPerImage, f.Outputs["logits_per_image"].Floats());
            var diffImg = Diff.MaxAbs(r.ImageFeatures, f.Outputs["image_features"].Floats());
            output.WriteLine($"external-data reload: logits max|diff| {diff:E3}, image_features {diffImg:E3}");
            Assert.True(diff <= Diff.Tolerance(f.Outputs["logits_per_image"].Floats()));
            Assert.True(diffImg <= Diff.Tolerance(f.Outputs["image_features"].Floats()));

            // The in-memory builder is unchanged by saving with external data.
            Assert.Equal(inline, b.ToBytes());
            // A plain save keeps everything inline.
            var plain = Path.Combine(dir.FullName, "plain.onnx");
            Assert.Null(b.Save(plain));
            Assert.Equal(inline, File.ReadAllBytes(plain));
        }
        finally
        {
            dir.Delete(true);
        }
    }
}
