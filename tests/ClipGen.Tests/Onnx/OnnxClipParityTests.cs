using ClipGen.Onnx;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;

namespace ClipGen.Tests.Onnx;

/// <summary>Numerical parity of the exported graphs, run in ONNX Runtime, with the reference implementations' outputs.</summary>
public class OnnxClipParityTests(ITestOutputHelper output)
{
    public static TheoryData<string> Models => new(OnnxFixture.All);

    static readonly OnnxClipSessionOptions Cpu = new() { IntraOpNumThreads = 1 };

    void AssertClose(string what, float[] actual, float[] reference, double rel = 1e-4)
    {
        var diff = Diff.MaxAbs(actual, reference);
        var tol = Diff.Tolerance(reference, rel);
        output.WriteLine($"{what}: max|diff| = {diff:E3} (tolerance {tol:E1})");
        Assert.True(diff <= tol, $"{what}: max|diff| {diff:E3} > {tol:E3}");
    }

    void AssertMatchesReference(string name, ClipOnnxOutputs r, OnnxFixture f, double rel = 1e-4)
    {
        AssertClose($"{name} image_features", r.ImageFeatures, f.Outputs["image_features"].Floats(), rel);
        AssertClose($"{name} text_features", r.TextFeatures, f.Outputs["text_features"].Floats(), rel);
        AssertClose($"{name} logits_per_image", r.LogitsPerImage, f.Outputs["logits_per_image"].Floats(), rel);
        AssertClose($"{name} logits_per_text", r.LogitsPerText, f.Outputs["logits_per_text"].Floats(), rel);
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Full_model_matches_reference(string model)
    {
        using var f = OnnxFixture.Load(model);
        var bytes = ClipOnnxExport.Full(f.Plan, f.Weight).ToBytes();
        using var s = new OnnxClipSession(bytes, Cpu);
        Assert.Equal(ClipOnnxKind.Full, s.Kind);
        AssertMatchesReference(model, s.Run(f.Pixels, f.ImageBatch, f.Ids, f.TextBatch), f);
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Image_and_text_encoders_match_reference(string model)
    {
        using var f = OnnxFixture.Load(model);
        using var img = new OnnxClipSession(ClipOnnxExport.ImageEncoder(f.Plan, f.Weight).ToBytes(), Cpu);
        using var txt = new OnnxClipSession(ClipOnnxExport.TextEncoder(f.Plan, f.Weight).ToBytes(), Cpu);
        Assert.Equal((ClipOnnxKind.Image, ClipOnnxKind.Text), (img.Kind, txt.Kind));
        AssertClose($"{model} image encoder", img.EncodeImage(f.Pixels, f.ImageBatch), f.Outputs["image_features"].Floats());
        AssertClose($"{model} text encoder", txt.EncodeText(f.Ids, f.TextBatch), f.Outputs["text_features"].Floats());
    }

    [Theory]
    [InlineData("openai/tiny-rn", 18)]
    [InlineData("open_clip/tiny-vit-gelu", 18)]
    [InlineData("open_clip/tiny-vit-gelu", 20)]
    public void Later_opsets_match_reference(string model, int opset)
    {
        using var f = OnnxFixture.Load(model);
        var b = ClipOnnxExport.Full(f.Plan, f.Weight, new OnnxBuilderOptions { Opset = opset });
        if (opset >= 20) Assert.Contains("Gelu", b.NodeOpTypes);
        using var s = new OnnxClipSession(b.ToBytes(), Cpu);
        AssertMatchesReference($"{model} opset {opset}", s.Run(f.Pixels, f.ImageBatch, f.Ids, f.TextBatch), f);
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Dynamic_batch_rows_equal_single_rows(string model)
    {
        using var f = OnnxFixture.Load(model);
        using var s = new OnnxClipSession(ClipOnnxExport.Full(f.Plan, f.Weight).ToBytes(), Cpu);
        int e = s.EmbedDim, px = 3 * s.ImageSize * s.ImageSize, c = s.ContextLength;
        var pixels = f.Pixels;
        var ids = f.Ids;
        // batch 3 images x 3 captions, then each pair alone.
        var all = s.Run(pixels.AsSpan(0, 3 * px).ToArray(), 3, ids.AsSpan(0, 3 * c).ToArray(), 3);
        Assert.Equal(9, all.LogitsPerImage.Length);
        double worst = 0;
        for (int i = 0; i < 3; i++)
        {
            var one = s.Run(pixels.AsSpan(i * px, px).ToArray(), 1, ids.AsSpan(i * c, c).ToArray(), 1);
            worst = Math.Max(worst, Diff.MaxAbs(one.ImageFeatures, all.ImageFeatures.AsSpan(i * e, e)));
            worst = Math.Max(worst, Diff.MaxAbs(one.TextFeatures, all.TextFeatures.AsSpan(i * e, e)));
            worst = Math.Max(worst, Math.Abs(one.LogitsPerImage[0] - all.LogitsPerImage[i * 3 + i]));
        }
        // Uneven batches: 1 image against 4 captions.
        var uneven = s.Run(pixels.AsSpan(0, px).ToArray(), 1, ids, f.TextBatch);
        Assert.Equal(f.TextBatch, uneven.LogitsPerText.Length);
        output.WriteLine($"{model}: batch 1 vs batch 3 rows max|diff| = {worst:E3}");
        Assert.True(worst <= 1e-5, $"batch rows differ by {worst:E3}");
    }

    [Theory]
    [InlineData("openai/tiny-vit", 2)]
    [InlineData("openai/tiny-rn", 2)]
    [InlineData("openai/tiny-vit", 5)]
    public void Concurrent_runs_split_the_batch_and_still_match_reference(string model, int concurrentRuns)
    {
        using var f = OnnxFixture.Load(model);
        var options = new OnnxClipSessionOptions { IntraOpNumThreads = 1, ConcurrentRuns = concurrentRuns };
        using var img = new OnnxClipSession(ClipOnnxExport.ImageEncoder(f.Plan, f.Weight).ToBytes(), options);
        using var txt = new OnnxClipSession(ClipOnnxExport.TextEncoder(f.Plan, f.Weight).ToBytes(), options);
        using var single = new OnnxClipSession(ClipOnnxExport.ImageEncoder(f.Plan, f.Weight).ToBytes(), Cpu);
        // Arrays: odd batches (3 images, 4 captions) split into uneven parts, and more parts than items.
        var imageFeatures = img.EncodeImage(f.Pixels, f.ImageBatch);
        AssertClose($"{model} image encoder, {concurrentRuns} runs", imageFeatures, f.Outputs["image_features"].Floats());
        AssertClose($"{model} text encoder, {concurrentRuns} runs", txt.EncodeText(f.Ids, f.TextBatch), f.Outputs["text_features"].Floats());
        Assert.True(Diff.MaxAbs(imageFeatures, single.EncodeImage(f.Pixels, f.ImageBatch)) <= 1e-6);
        // Tensors: the same numbers through the pointer path.
        using var px = f.Inputs["pixel_values"].ToTensor();
        using var ids = f.Inputs["input_ids"].ToTensor();
        using var ti = img.EncodeImage(px);
        using var tt = txt.EncodeText(ids);
        Assert.Equal(imageFeatures, ti.data<float>().ToArray());
        AssertClose($"{model} text encoder (tensor), {concurrentRuns} runs", tt.data<float>().ToArray(), f.Outputs["text_features"].Floats());
        Assert.Throws<ClipGenException>(() => new OnnxClipSession(ClipOnnxExport.ImageEncoder(f.Plan, f.Weight).ToBytes(), options with { ConcurrentRuns = 0 }));
    }

    [Fact]
    public void Fp16_weights_stay_close_and_halve_the_file()
    {
        using var f = OnnxFixture.Load("openai/tiny-vit");
        var b32 = ClipOnnxExport.Full(f.Plan, f.Weight).ToBytes();
        var b = ClipOnnxExport.Full(f.Plan, f.Weight, new OnnxBuilderOptions { WeightStorage = OnnxWeightStorage.Float16 });
        var bytes = b.ToBytes();
        var info = OnnxModelInfo.Parse(bytes);
        Assert.All(info.Initializers, i => Assert.Equal(OnnxElementType.Float16, i.Type));
        Assert.Equal("float16", info.Metadata[ClipOnnxNames.MetaWeightStorage]);
        output.WriteLine($"fp32 file {b32.Length} bytes, fp16 file {bytes.Length} bytes");
        Assert.True(bytes.Length < b32.Length * 0.55);
        using var s = new OnnxClipSession(bytes, Cpu);
        var r = s.Run(f.Pixels, f.ImageBatch, f.Ids, f.TextBatch);
        // fp16 rounds the weights only (relative 2^-11); features keep about 3 significant digits.
        AssertMatchesReference("fp16 weights", r, f, rel: 2e-2);
    }

    [Fact]
    public void Torch_tensor_api_equals_array_api()
    {
        using var f = OnnxFixture.Load("openai/tiny-vit");
        using var s = new OnnxClipSession(ClipOnnxExport.Full(f.Plan, f.Weight).ToBytes(), Cpu);
        var arrays = s.Run(f.Pixels, f.ImageBatch, f.Ids, f.TextBatch);
        using var px = f.Inputs["pixel_values"].ToTensor();
        using var ids = f.Inputs["input_ids"].ToTensor();
        var (img, txt, lpi, lpt) = s.Run(px, ids);
        using (img) using (txt) using (lpi) using (lpt)
        {
            Assert.Equal(new long[] { f.ImageBatch, f.TextBatch }, lpi.shape);
            Assert.Equal(arrays.ImageFeatures, img.data<float>().ToArray());
            Assert.Equal(arrays.TextFeatures, txt.data<float>().ToArray());
            Assert.Equal(arrays.LogitsPerImage, lpi.data<float>().ToArray());
            Assert.Equal(arrays.LogitsPerText, lpt.data<float>().ToArray());
        }
        // A non-contiguous input is converted, not misread.
        using var imgSession = new OnnxClipSession(ClipOnnxExport.ImageEncoder(f.Plan, f.Weight).ToBytes(), Cpu);
        using var swapped = px.transpose(2, 3).contiguous().transpose(2, 3);
        Assert.False(swapped.is_contiguous());
        using var feats = imgSession.EncodeImage(swapped);
        Assert.Equal(arrays.ImageFeatures, feats.data<float>().ToArray());
    }

    [Fact]
    public void Optimized_graph_histogram_reports_fusions()
    {
        using var f = OnnxFixture.Load("openai/tiny-vit");
        var dir = Directory.CreateTempSubdirectory("clipgen-onnx-test-");
        try
        {
            var path = Path.Combine(dir.FullName, "clip.onnx");
            ClipOnnxExport.Full(f.Plan, f.Weight).Save(path);
            var before = OnnxModelInfo.OpHistogram(path);
            var after = OnnxClipSession.OptimizedOpHistogram(path, Cpu);
            output.WriteLine("exported: " + string.Join(", ", before.Select(p => $"{p.Key}×{p.Value}")));
            output.WriteLine("optimised: " + string.Join(", ", after.Select(p => $"{p.Key}×{p.Value}")));
            Assert.True(after.Values.Sum() < before.Values.Sum(), "ORT's optimisations should shrink the graph");
            Assert.Contains(after.Keys, k => k.StartsWith("com.microsoft:", StringComparison.Ordinal));
        }
        finally
        {
            dir.Delete(true);
        }
    }
}
