using System.Diagnostics;
using System.Globalization;
using ClipGen.Backends;
using ClipGen.Modeling;
using ClipGen.Onnx;
using TorchSharp;
using static TorchSharp.torch;

namespace ClipGen.Benchmarks;

/// <summary>
/// The measurements behind <see cref="OnnxQuantizationOptions"/>'s defaults: each weight format × operator form (and
/// which layers stay float) against fp32 ORT on one tower, speed and cosine(int8, fp32), engines interleaved run by run.
/// Usage: <c>int8-variants [--model ViT-B-32] [--tower image] [--batch 32] [--threads 2] [--runs 5] [--variants all|name,name]</c>;
/// <c>int8-variants --conv-probe</c> times float <c>Conv</c> against <c>DynamicQuantizeLinear</c> + <c>ConvInteger</c> at RN50's shapes.
/// </summary>
public static class Int8VariantsBenchmark
{
    static readonly (string Name, OnnxQuantizationOptions Options)[] All =
    [
        ("s8-7bit dqmm", new()),
        ("s8-8bit dqmm", new() { Weights = OnnxInt8Weights.Int8 }),
        ("u8 dqmm", new() { Weights = OnnxInt8Weights.Uint8 }),
        ("s8-7bit matmulinteger", new() { Operator = OnnxInt8Operator.MatMulInteger }),
        ("s8-7bit dqmm, projections int8 too", new() { KeepFloat = [] }),
        ("s8-7bit dqmm, attention in/out float", new() { KeepFloat = [.. OnnxQuantizationOptions.DefaultKeepFloat, "in_proj_weight", "out_proj.weight"] }),
        ("s8-7bit dqmm, mlp.c_proj float", new() { KeepFloat = [.. OnnxQuantizationOptions.DefaultKeepFloat, "c_proj.weight"] }),
    ];

    public static int Run(string[] args)
    {
        string Opt(string name, string fallback) => BenchUtil.Option(args, name, fallback);
        var model = Opt("model", "ViT-B-32");
        var tower = Opt("tower", "image");
        int batch = int.Parse(Opt("batch", "32"), CultureInfo.InvariantCulture);
        int threads = int.Parse(Opt("threads", "2"), CultureInfo.InvariantCulture);
        int runs = int.Parse(Opt("runs", "5"), CultureInfo.InvariantCulture);
        if (args.Contains("--conv-probe")) return ConvProbe(threads, runs);
        var pick = Opt("variants", "all");
        var variants = pick == "all" ? All : All.Where(v => pick.Split(',').Contains(v.Name)).ToArray();

        torch.set_num_threads(threads);
        torch.manual_seed(0);
        using var m = ClipModelFactory.Create(model);
        m.eval();
        var session = new OnnxClipSessionOptions { IntraOpNumThreads = threads };
        var backends = new List<(string Name, IClipBackend Backend)> { ("fp32", ClipBackends.Create(m, BackendKind.Onnx, new ClipBackendOptions { Session = session })) };
        foreach (var (name, o) in variants)
            backends.Add((name, ClipBackends.Create(m, BackendKind.Onnx, new ClipBackendOptions
            {
                Session = session,
                Export = new OnnxExportOptions { Precision = OnnxPrecision.Int8, Quantization = o },
            })));
        try
        {
            using var scope = NewDisposeScope();
            var gen = new Generator(1);
            var px = randn([batch, 3, m.Spec.Vision.ImageSize, m.Spec.Vision.ImageSize], generator: gen);
            var ids = randint(1, m.Spec.Text.VocabSize - 2, [batch, m.Spec.Text.ContextLength], generator: gen);
            ids[TensorIndex.Colon, m.Spec.Text.ContextLength - 1] = tensor((long)m.Spec.Text.VocabSize - 1);
            Tensor Encode(IClipBackend b) => tower == "image" ? b.EncodeImage(px) : b.EncodeText(ids);
            var reference = Encode(backends[0].Backend);
            var times = backends.Select(_ => new List<double>()).ToArray();
            for (int r = -1; r < runs; r++)
                for (int i = 0; i < backends.Count; i++)
                {
                    var sw = Stopwatch.StartNew();
                    using (Encode(backends[i].Backend)) { }
                    if (r >= 0) times[i].Add(sw.Elapsed.TotalSeconds);
                }
            double fp32 = batch / times[0].Order().ElementAt(runs / 2);
            Console.WriteLine($"{model} {tower}, batch {batch}, {threads} threads, median of {runs}, load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]}");
            Console.WriteLine("| variant | items/s | × fp32 | cosine min | cosine mean |");
            Console.WriteLine("|---|---:|---:|---:|---:|");
            for (int i = 0; i < backends.Count; i++)
            {
                double ips = batch / times[i].Order().ElementAt(runs / 2);
                var cos = nn.functional.cosine_similarity(reference, Encode(backends[i].Backend), 1);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {backends[i].Name} | {ips:0.00} | {ips / fp32:0.00} | {cos.min().ToDouble():0.000000} | {cos.mean().ToDouble():0.000000} |"));
            }
        }
        finally
        {
            foreach (var (_, b) in backends) b.Dispose();
        }
        return 0;
    }

    /// <summary>
    /// Does an integer convolution pay in ORT on this CPU? One RN50 convolution per graph, batch 32: float <c>Conv</c>
    /// (ORT's NCHWc kernels) against <c>DynamicQuantizeLinear</c> → <c>ConvInteger</c> (uint8 weights, the only kind ORT's
    /// CPU kernel takes) → <c>Cast</c> → <c>Mul</c> (the rescale; a quantized ResNet would also need BatchNorm folded first).
    /// </summary>
    static int ConvProbe(int threads, int runs)
    {
        (int C, int K, int Hw, int Kernel, string What)[] shapes =
        [
            (64, 64, 56, 3, "layer1 conv2 3x3"), (64, 256, 56, 1, "layer1 conv3 1x1"), (256, 64, 56, 1, "layer1 conv1 1x1"),
            (256, 256, 14, 3, "layer3 conv2 3x3"), (1024, 256, 14, 1, "layer3 conv1 1x1"), (512, 512, 7, 3, "layer4 conv2 3x3"),
        ];
        const int N = 32;
        Console.WriteLine($"batch {N}, {threads} threads, median of {runs}, load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]}");
        Console.WriteLine("| conv | float Conv ms | DQL+ConvInteger(u8 weights)+Cast+Mul ms | int / float | same with s8 weights ms (int / float) |");
        Console.WriteLine("|---|---:|---:|---:|---|");
        var rng = new Random(3);
        foreach (var (c, k, hw, kernel, what) in shapes)
        {
            var w = new float[k * c * kernel * kernel];
            for (int i = 0; i < w.Length; i++) w[i] = (float)(rng.NextDouble() - 0.5);
            var wq = w.Select(v => (byte)Math.Clamp((int)MathF.Round(v * 254) + 128, 0, 255)).ToArray();
            var ws = w.Select(v => unchecked((byte)(sbyte)Math.Clamp((int)MathF.Round(v * 126), -63, 63))).ToArray();
            double Time(bool integer, bool signed = false)
            {
                var b = new OnnxGraphBuilder();
                var x = b.Input("x", OnnxElementType.Float, N, c, hw, hw);
                long pad = kernel / 2;
                OnnxAttribute[] attrs = [OnnxAttribute.Ints("kernel_shape", kernel, kernel), OnnxAttribute.Ints("pads", pad, pad, pad, pad)];
                OnnxValue y;
                if (!integer)
                    y = b.Op("Conv", [x, b.AddInitializer("w", OnnxElementType.Float, [k, c, kernel, kernel], System.Runtime.InteropServices.MemoryMarshal.AsBytes(w.AsSpan()))], 1, attrs)[0];
                else
                {
                    var q = b.Op("DynamicQuantizeLinear", [x], 3);
                    var wv = signed ? b.AddInitializer("w", OnnxElementType.Int8, [k, c, kernel, kernel], ws) : b.AddInitializer("w", OnnxElementType.Uint8, [k, c, kernel, kernel], wq);
                    var zp = signed ? b.Const(OnnxElementType.Int8, [], [0]) : b.Const(OnnxElementType.Uint8, [], [128]);
                    var acc = b.Op("ConvInteger", [q[0], wv, q[2], zp], 1, attrs)[0];
                    y = b.Mul(b.Cast(acc, OnnxElementType.Float), b.Mul(q[1], b.Const(1f / 254)));
                }
                b.Output(y, "y", OnnxElementType.Float, N, k, hw, hw);
                using var so = new Microsoft.ML.OnnxRuntime.SessionOptions { IntraOpNumThreads = threads, GraphOptimizationLevel = Microsoft.ML.OnnxRuntime.GraphOptimizationLevel.ORT_ENABLE_ALL };
                using var s = new Microsoft.ML.OnnxRuntime.InferenceSession(b.ToBytes(), so);
                var input = new float[N * c * hw * hw];
                for (int i = 0; i < input.Length; i++) input[i] = (float)rng.NextDouble();
                using var iv = Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(input, [N, c, hw, hw]);
                var output = new float[N * k * hw * hw];
                using var ov = Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(output, [N, k, hw, hw]);
                using var run = new Microsoft.ML.OnnxRuntime.RunOptions();
                return BenchUtil.MedianSeconds(() => s.Run(run, ["x"], [iv], ["y"], [ov]), warmup: 1, runs: runs) * 1e3;
            }
            double f = Time(false), q = Time(true);
            string signedCell;
            try { double sq = Time(true, signed: true); signedCell = string.Create(CultureInfo.InvariantCulture, $"{sq:0.0} ({sq / f:0.00})"); }
            catch (Microsoft.ML.OnnxRuntime.OnnxRuntimeException e) { signedCell = "not supported: " + e.Message.Split('\n')[0]; }
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {what}, {c}→{k} at {hw}×{hw} | {f:0.0} | {q:0.0} | {q / f:0.00} | {signedCell} |"));
        }
        return 0;
    }
}
