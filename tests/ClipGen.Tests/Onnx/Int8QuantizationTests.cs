using ClipGen.Backends;
using ClipGen.Modeling;
using ClipGen.Onnx;
using Microsoft.ML.OnnxRuntime;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace ClipGen.Tests.Onnx;

/// <summary>
/// The int8 path (<see cref="OnnxQuantizer"/>): the rewrite itself against a derived error bound, the graph it makes, and
/// the bound ClipGen promises (cosine(int8, fp32) ≥ 0.99 for every embedding) on the tiny reference models.
/// </summary>
public class Int8QuantizationTests(ITestOutputHelper output)
{
    const double CosineBound = 0.99;
    static readonly ClipBackendOptions Fp32 = new() { Session = new() { IntraOpNumThreads = 2 } };
    static readonly ClipBackendOptions Int8 = Fp32 with { Precision = OnnxPrecision.Int8 };

    /// <summary>
    /// One nn.Linear (MatMul(x, Transpose(W)) + b) with output channels of very different magnitudes, quantized, run in ORT and
    /// checked element by element against the error bound of the scheme: with the activation step s_x (uint8, per tensor)
    /// and the weight step s_n of channel n, |y_q − y| ≤ Σ_k (|x_k|·s_n/2 + |W_nk|·s_x/2 + s_x·s_n/4). A per-tensor weight
    /// scale, a wrong transpose or a lost bias breaks it.
    /// </summary>
    [Theory]
    [InlineData(OnnxInt8Weights.Int8ReducedRange, OnnxInt8Operator.DynamicQuantizeMatMul)]
    [InlineData(OnnxInt8Weights.Int8ReducedRange, OnnxInt8Operator.MatMulInteger)]
    [InlineData(OnnxInt8Weights.Uint8, OnnxInt8Operator.DynamicQuantizeMatMul)]
    [InlineData(OnnxInt8Weights.Uint8, OnnxInt8Operator.MatMulInteger)]
    public void A_quantized_linear_layer_stays_within_the_quantization_error_bound(OnnxInt8Weights format, OnnxInt8Operator op)
    {
        const int M = 5, K = 24, N = 6;
        var rng = new Random(4);
        var w = new float[N * K];
        for (int n = 0; n < N; n++)
            for (int k = 0; k < K; k++) w[n * K + k] = (float)((rng.NextDouble() * 2 - 1) * Math.Pow(10, n - 3));   // channel scales 1e-3 … 1e2
        var bias = Enumerable.Range(0, N).Select(i => 0.5f * i - 1).ToArray();
        var x = Enumerable.Range(0, M * K).Select(_ => (float)(rng.NextDouble() * 3 - 1)).ToArray();

        var b = new OnnxGraphBuilder(weights: key => key == "fc.weight" ? OnnxWeight.FromFloats(w, N, K) : OnnxWeight.FromFloats(bias, N));
        var input = b.Input("x", OnnxElementType.Float, M, K);
        OnnxValue y;
        using (b.Scope("fc"))
            y = ClipGen.Modules.Layers.EmitLinear(b, input, N, K);
        b.Output(y, "y", OnnxElementType.Float, M, N);
        var model = OnnxQuantizer.Quantize(b.ToBytes(), new OnnxQuantizationOptions { Weights = format, Operator = op, KeepFloat = [] }, out var report);
        Assert.Equal(["fc.weight"], report.Quantized);

        var info = OnnxModelInfo.Parse(model);
        Assert.DoesNotContain("MatMul", info.OpTypes);
        Assert.DoesNotContain("Transpose", info.OpTypes);
        Assert.Contains(op == OnnxInt8Operator.DynamicQuantizeMatMul ? "com.microsoft:DynamicQuantizeMatMul" : "MatMulInteger", info.OpTypes);
        Assert.DoesNotContain(info.Initializers, i => i.Name == "fc.weight");
        var q = Assert.Single(info.Initializers, i => i.Name == "fc.weight_quantized");
        Assert.Equal([K, N], q.Dims);
        Assert.Equal(format == OnnxInt8Weights.Uint8 ? OnnxElementType.Uint8 : OnnxElementType.Int8, q.Type);
        Assert.Equal("int8", info.Metadata[OnnxQuantizer.MetaPrecision]);

        var actual = new float[M * N];
        using (var s = new InferenceSession(model))
        using (var iv = OrtValue.CreateTensorValueFromMemory(x, [M, K]))
        using (var ov = OrtValue.CreateTensorValueFromMemory(actual, [M, N]))
        using (var run = new RunOptions())
            s.Run(run, ["x"], [iv], ["y"], [ov]);

        double qmax = format == OnnxInt8Weights.Int8ReducedRange ? 63 : 127;
        double sx = (Math.Max(0, x.Max()) - Math.Min(0, x.Min())) / 255.0;
        double worst = 0, largestError = 0;
        for (int i = 0; i < M; i++)
            for (int n = 0; n < N; n++)
            {
                double exact = bias[n], bound = 1e-6 * Math.Abs(bias[n]);
                double sw = Enumerable.Range(0, K).Max(k => Math.Abs(w[n * K + k])) / qmax;
                for (int k = 0; k < K; k++)
                {
                    double xv = x[i * K + k], wv = w[n * K + k];
                    exact += xv * wv;
                    bound += Math.Abs(xv) * sw / 2 + Math.Abs(wv) * sx / 2 + sx * sw / 4;
                }
                double err = Math.Abs(actual[i * N + n] - exact);
                worst = Math.Max(worst, err / bound);
                largestError = Math.Max(largestError, err);
                Assert.True(err <= bound * (1 + 1e-4) + 1e-6, $"row {i} channel {n}: |{actual[i * N + n]} − {exact}| = {err:G3} > bound {bound:G3}");
            }
        output.WriteLine($"{format}/{op}: worst error / bound = {worst:F3}, largest error {largestError:G3}");
        Assert.True(largestError > 0, "the output equals the float result exactly: nothing was quantized");
    }

    [Fact]
    public void The_tiny_vit_graphs_quantize_every_linear_layer_but_the_projections()
    {
        using var model = ClipModelFactory.Load("tiny-vit", ClipGen.Tests.Fixtures.Path_("reference", "openai", "tiny-vit", "model.safetensors"));
        using var weights = new StateDict(model);
        foreach (var kind in new[] { ClipOnnxKind.Image, ClipOnnxKind.Text })
        {
            var b = ClipOnnxExporter.Build(model.Spec, model.Plan, kind, weights.Get, new OnnxExportOptions { Precision = OnnxPrecision.Int8 });
            var info = OnnxModelInfo.Parse(b.ToBytes());
            // tiny-vit: 2 layers per tower, each with in_proj, out_proj, c_fc and c_proj.
            Assert.Equal(8, info.OpTypes.Count(t => t == "com.microsoft:DynamicQuantizeMatMul"));
            var projection = kind == ClipOnnxKind.Image ? "visual.proj" : "text_projection";
            Assert.Contains(info.Initializers, i => i.Name == projection && i.Type == OnnxElementType.Float);
            Assert.Equal(8, info.Initializers.Count(i => i.Type == OnnxElementType.Int8));
            Assert.DoesNotContain(info.Initializers, i => i.Name.EndsWith("in_proj_weight", StringComparison.Ordinal));
            Assert.Equal("int8", info.Metadata[OnnxQuantizer.MetaPrecision]);
            Assert.Contains("matmuls=8/9", info.Metadata[OnnxQuantizer.MetaQuantization]);
            Assert.Contains("float=" + projection, info.Metadata[OnnxQuantizer.MetaQuantization]);
            // Left as float MatMuls: the attention products q·kᵀ and p·v (2 per layer) and the projection.
            Assert.Equal(5, info.OpTypes.Count(t => t == "MatMul"));
            output.WriteLine($"{kind}: {info.Metadata[OnnxQuantizer.MetaQuantization]}");
        }
        Assert.Throws<InvalidOperationException>(() =>
            OnnxQuantizer.Quantize(ClipOnnxExporter.Build(model.Spec, model.Plan, ClipOnnxKind.Image, weights.Get,
                new OnnxExportOptions { Precision = OnnxPrecision.Int8 }).ToBytes()));
    }

    /// <summary>Every image and text embedding of the three tiny references: int8 against PyTorch's float32 outputs and against ORT fp32.</summary>
    [Theory]
    [InlineData("openai/tiny-vit", "tiny-vit", "model.safetensors")]
    [InlineData("openai/tiny-rn", "tiny-rn", "model.safetensors")]
    [InlineData("open_clip/tiny-vit-gelu", "tiny-vit-gelu", "open_clip_model.safetensors")]
    public void Tiny_reference_embeddings_keep_cosine_0_99(string folder, string name, string weightsFile)
    {
        using var model = ClipModelFactory.Load(name, ClipGen.Tests.Fixtures.Path_("reference", folder, weightsFile));
        using var inputs = TestUtil.Read(ClipGen.Tests.Fixtures.Path_("reference", folder, "inputs.safetensors"));
        using var expected = TestUtil.Read(ClipGen.Tests.Fixtures.Path_("reference", folder, "outputs.safetensors"));
        using var fp32 = ClipBackends.Create(model, BackendKind.Onnx, Fp32);
        using var int8 = ClipBackends.Create(model, BackendKind.Onnx, Int8);
        using var scope = NewDisposeScope();
        var px = inputs.Tensors["pixel_values"];
        var ids = inputs.Tensors["input_ids"];
        foreach (var (tower, reference, ort, quantized) in new[]
                 {
                     ("image", expected.Tensors["image_features"], fp32.EncodeImage(px), int8.EncodeImage(px)),
                     ("text", expected.Tensors["text_features"], fp32.EncodeText(ids), int8.EncodeText(ids)),
                 })
        {
            var vsReference = Cosines(reference, quantized);
            var vsOrt = Cosines(ort, quantized);
            output.WriteLine($"{name} {tower}: cosine(int8, PyTorch fp32) min {vsReference.Min():F6}, cosine(int8, ORT fp32) min {vsOrt.Min():F6} over {vsOrt.Length}");
            Assert.All(vsReference, c => Assert.True(c >= CosineBound, $"{name} {tower}: cosine {c} to the reference"));
            Assert.All(vsOrt, c => Assert.True(c >= CosineBound, $"{name} {tower}: cosine {c} to ORT fp32"));
            Assert.True(vsOrt.Min() < 1 - 1e-9, "int8 equals fp32: nothing was quantized");
        }
    }

    /// <summary>float16 weight storage and int8 together (the weights reach the MatMuls through a Cast), and the portable operator form.</summary>
    [Fact]
    public void Float16_storage_and_the_standard_operator_form_agree_with_the_default()
    {
        using var model = ClipModelFactory.Load("tiny-vit-gelu", ClipGen.Tests.Fixtures.Path_("reference", "open_clip", "tiny-vit-gelu", "open_clip_model.safetensors"));
        using var inputs = TestUtil.Read(ClipGen.Tests.Fixtures.Path_("reference", "open_clip", "tiny-vit-gelu", "inputs.safetensors"));
        using var scope = NewDisposeScope();
        var px = inputs.Tensors["pixel_values"];
        var ids = inputs.Tensors["input_ids"];
        using var reference = ClipBackends.Create(model, BackendKind.Onnx, Int8);
        var img = reference.EncodeImage(px);
        var txt = reference.EncodeText(ids);
        foreach (var export in new[]
                 {
                     new OnnxExportOptions { WeightStorage = OnnxWeightStorage.Float16 },
                     new OnnxExportOptions { Quantization = new OnnxQuantizationOptions { Operator = OnnxInt8Operator.MatMulInteger } },
                 })
        {
            using var other = ClipBackends.Create(model, BackendKind.Onnx, Int8 with { Export = export });
            var a = Cosines(img, other.EncodeImage(px));
            var t = Cosines(txt, other.EncodeText(ids));
            output.WriteLine($"{export}: image min {a.Min():F6}, text min {t.Min():F6}");
            Assert.All(a.Concat(t), c => Assert.True(c >= 0.999, $"cosine {c}"));
        }
    }

    [Fact]
    public void The_torch_backend_refuses_int8()
    {
        using var model = ClipModelFactory.Load("tiny-vit", ClipGen.Tests.Fixtures.Path_("reference", "openai", "tiny-vit", "model.safetensors"));
        var e = Assert.Throws<ClipGenException>(() => ClipBackends.Create(model, BackendKind.Torch, Int8));
        Assert.Contains("ONNX Runtime", e.Message);
    }

    [Fact]
    public void Opening_a_float_export_with_int8_quantizes_it()
    {
        using var model = ClipModelFactory.Load("tiny-rn", ClipGen.Tests.Fixtures.Path_("reference", "openai", "tiny-rn", "model.safetensors"));
        var dir = TestUtil.TempDir();
        ClipOnnxExporter.Export(model, ClipOnnxKind.All, dir);
        using var int8 = OnnxClipBackend.Open(dir, Int8);
        using var fromModel = ClipBackends.Create(model, BackendKind.Onnx, Int8);
        using var scope = NewDisposeScope();
        var (px, ids) = BackendParity.RandomInputs(model.Spec, batch: 3, seed: 2);
        Assert.True(int8.ImageSession.Session.ModelMetadata.CustomMetadataMap.TryGetValue(OnnxQuantizer.MetaPrecision, out var p) && p == "int8");
        Assert.Equal(0, (int8.EncodeImage(px) - fromModel.EncodeImage(px)).abs().max().ToDouble(), 6);
        Assert.Equal(0, (int8.EncodeText(ids) - fromModel.EncodeText(ids)).abs().max().ToDouble(), 6);
    }

    internal static double[] Cosines(Tensor a, Tensor b) =>
        nn.functional.cosine_similarity(a.to(ScalarType.Float64), b.to(ScalarType.Float64), 1).data<double>().ToArray();

    /// <summary>The model's state_dict as the exporter's weights function (CPU float32, owned here).</summary>
    sealed class StateDict(ClipModule model) : IDisposable
    {
        readonly Dictionary<string, Tensor> _state = model.state_dict();

        public OnnxWeight Get(string key)
        {
            using var t = _state[key].detach().contiguous();
            return new OnnxWeight(t.shape, t.dtype == ScalarType.Int64 ? OnnxElementType.Int64 : OnnxElementType.Float, t.bytes.ToArray());
        }

        public void Dispose() { }
    }
}
