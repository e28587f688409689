using ClipGen.Backends;
using ClipGen.Modeling;
using ClipGen.Onnx;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace ClipGen.Tests.Onnx;

/// <summary>What fp16 weight storage costs in accuracy (the numbers of docs/onnx.md); bounds are loose, the output is the point.</summary>
public class Fp16AccuracyTests(ITestOutputHelper output)
{
    static readonly ClipBackendOptions Fp32 = new() { Session = new() { IntraOpNumThreads = 2 } };
    static readonly ClipBackendOptions Fp16 = Fp32 with { Export = new OnnxExportOptions { WeightStorage = OnnxWeightStorage.Float16 } };

    (double Img, double Txt, double Logits, double MaxLogit) Compare(ClipModule model, Tensor px, Tensor ids)
    {
        using var a = ClipBackends.Create(model, BackendKind.Onnx, Fp32);
        using var b = ClipBackends.Create(model, BackendKind.Onnx, Fp16);
        using var scope = NewDisposeScope();
        var ia = a.EncodeImage(px); var ib = b.EncodeImage(px);
        var ta = a.EncodeText(ids); var tb = b.EncodeText(ids);
        var (la, _) = a.Logits(ia, ta); var (lb, _) = b.Logits(ib, tb);
        static double Rel(Tensor x, Tensor y) => (x - y).abs().max().ToDouble() / Math.Max(1e-12, x.abs().max().ToDouble());
        return (Rel(ia, ib), Rel(ta, tb), (la - lb).abs().max().ToDouble(), la.abs().max().ToDouble());
    }

    [Theory]
    [InlineData("openai/tiny-vit", "tiny-vit", "model.safetensors")]
    [InlineData("openai/tiny-rn", "tiny-rn", "model.safetensors")]
    [InlineData("open_clip/tiny-vit-gelu", "tiny-vit-gelu", "open_clip_model.safetensors")]
    public void Fixtures(string folder, string name, string weights)
    {
        using var model = ClipModelFactory.Load(name, ClipGen.Tests.Fixtures.Path_("reference", folder, weights));
        using var inputs = TestUtil.Read(ClipGen.Tests.Fixtures.Path_("reference", folder, "inputs.safetensors"));
        var r = Compare(model, inputs.Tensors["pixel_values"], inputs.Tensors["input_ids"]);
        output.WriteLine($"{name} fp16 vs fp32: image {r.Img:E2} rel, text {r.Txt:E2} rel, logits {r.Logits:E2} abs (max |logit| {r.MaxLogit:G3})");
        Assert.True(r.Img < 5e-2 && r.Txt < 5e-2, $"{r}");
    }

    [Fact]
    public void ViT_B_32_random_weights()
    {
        torch.manual_seed(11);
        using var model = ClipModelFactory.Create("ViT-B-32");
        model.eval();
        using var scope = NewDisposeScope();
        var (px, ids) = BackendParity.RandomInputs(model.Spec, batch: 4, seed: 5);
        var r = Compare(model, px, ids);
        output.WriteLine($"ViT-B-32 (random init) fp16 vs fp32: image {r.Img:E2} rel, text {r.Txt:E2} rel, logits {r.Logits:E2} abs (max |logit| {r.MaxLogit:G3})");
        Assert.True(r.Img < 5e-2 && r.Txt < 5e-2, $"{r}");
    }
}
