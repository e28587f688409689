using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using ClipGen.Onnx;
using Microsoft.ML.OnnxRuntime;
using TorchSharp;
using static TorchSharp.torch;

namespace ClipGen.Benchmarks;

/// <summary>
/// The machine's fp32 matrix-multiply ceiling, which bounds every CLIP tower: about 97% of ViT-B-32's FLOPs are in its
/// linear layers. Times <c>torch.mm</c> (libtorch's BLAS) and ONNX Runtime's <c>MatMul</c> (MLAS) at ViT-B-32's batch-32
/// shapes and at a large square, plus a register-only FMA loop as the arithmetic peak. Usage:
/// <c>gemm [--threads 2] [--seconds 2]</c>.
/// </summary>
public static class GemmBenchmark
{
    /// <summary>(M, K, N): ViT-B-32 at batch 32 is 1,600 tokens × width 768; qkv, mlp up, mlp down, out proj, and 2048³.</summary>
    static readonly (int M, int K, int N, string What)[] Shapes =
    [
        (1600, 768, 2304, "ViT-B-32 qkv (in_proj)"),
        (1600, 768, 3072, "ViT-B-32 mlp.c_fc"),
        (1600, 3072, 768, "ViT-B-32 mlp.c_proj"),
        (1600, 768, 768, "ViT-B-32 out_proj"),
        (2048, 2048, 2048, "square 2048"),
    ];

    public static int Run(string[] args)
    {
        string Opt(string name, string fallback) => BenchUtil.Option(args, name, fallback);
        int threads = int.Parse(Opt("threads", "2"), CultureInfo.InvariantCulture);
        double seconds = double.Parse(Opt("seconds", "2"), CultureInfo.InvariantCulture);
        torch.set_num_threads(threads);
        Console.WriteLine($"MKL dispatch: {ClipGen.Backends.MklAmdDispatch.EnsureApplied().Detail}");

        Console.WriteLine($"fp32 GEMM, {threads} thread(s), best of 3 timings of ~{seconds / 3:0.0} s each");
        Console.WriteLine($"FMA peak (register-only AVX2 loop, {threads} thread(s)): {FmaPeak(threads):0.0} GFLOP/s");
        Console.WriteLine("| shape M×K×N | what | torch.mm GFLOP/s | ORT MatMul GFLOP/s |");
        Console.WriteLine("|---|---|---:|---:|");
        foreach (var (m, k, n, what) in Shapes)
        {
            double flops = 2.0 * m * k * n;
            using var a = randn(m, k);
            using var b = randn(k, n);
            double t = Best(() => a.mm(b).Dispose(), seconds / 3);

            using var session = MatMulSession(k, n, threads);
            var x = new float[(long)m * k];
            for (int i = 0; i < x.Length; i++) x[i] = (i % 17) * 0.01f;
            using var input = OrtValue.CreateTensorValueFromMemory(x, new long[] { m, k });
            var y = new float[(long)m * n];
            using var output = OrtValue.CreateTensorValueFromMemory(y, new long[] { m, n });
            using var run = new RunOptions();
            double o = Best(() => session.Run(run, ["x"], [input], ["y"], [output]), seconds / 3);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {m}×{k}×{n} | {what} | {flops / t / 1e9:0.0} | {flops / o / 1e9:0.0} |"));
        }
        return 0;
    }

    static InferenceSession MatMulSession(int k, int n, int threads)
    {
        var b = new OnnxGraphBuilder();
        var x = b.Input("x", OnnxElementType.Float, "m", k);
        var w = new float[(long)k * n];
        for (int i = 0; i < w.Length; i++) w[i] = (i % 13) * 0.01f;
        var weight = b.AddInitializer("w", OnnxElementType.Float, [k, n], MemoryMarshal.AsBytes(w.AsSpan()));
        b.Output(b.Op1("MatMul", [x, weight]), "y", OnnxElementType.Float, "m", n);
        var options = new SessionOptions { IntraOpNumThreads = threads, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
        return new InferenceSession(b.ToBytes(), options);
    }

    /// <summary>Best seconds per call over three timed windows, after two warm-up calls.</summary>
    static double Best(Action call, double window)
    {
        call();
        call();
        double best = double.MaxValue;
        for (int r = 0; r < 3; r++)
        {
            int calls = 0;
            var sw = Stopwatch.StartNew();
            do { call(); calls++; } while (sw.Elapsed.TotalSeconds < window);
            best = Math.Min(best, sw.Elapsed.TotalSeconds / calls);
        }
        return best;
    }

    /// <summary>Twelve independent FMA chains per thread (enough to cover latency on two FMA pipes), 256-bit.</summary>
    internal static double FmaPeak(int threads)
    {
        if (!Fma.IsSupported) return double.NaN;
        const long iterations = 200_000_000;
        FmaLoop(1_000); // compiled before timing
        double best = 0;
        for (int attempt = 0; attempt < 3; attempt++)
        {
            // Each thread times its own loop, so thread start-up skew does not count; the rates add up.
            var rates = new double[threads];
            var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
            {
                var sw = Stopwatch.StartNew();
                FmaLoop(iterations);
                rates[t] = iterations * 12 * 16 / sw.Elapsed.TotalSeconds / 1e9;
            })).ToArray();
            foreach (var w in workers) w.Start();
            foreach (var w in workers) w.Join();
            best = Math.Max(best, rates.Sum());
        }
        return best;
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    static float FmaLoop(long iterations)
    {
        var b = Vector256.Create(0.999999f);
        var c = Vector256.Create(1e-7f);
        var a0 = Vector256.Create(1f);
        Vector256<float> a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
        for (long i = 0; i < iterations; i++)
        {
            a0 = Fma.MultiplyAdd(a0, b, c); a1 = Fma.MultiplyAdd(a1, b, c);
            a2 = Fma.MultiplyAdd(a2, b, c); a3 = Fma.MultiplyAdd(a3, b, c);
            a4 = Fma.MultiplyAdd(a4, b, c); a5 = Fma.MultiplyAdd(a5, b, c);
            a6 = Fma.MultiplyAdd(a6, b, c); a7 = Fma.MultiplyAdd(a7, b, c);
            a8 = Fma.MultiplyAdd(a8, b, c); a9 = Fma.MultiplyAdd(a9, b, c);
            a10 = Fma.MultiplyAdd(a10, b, c); a11 = Fma.MultiplyAdd(a11, b, c);
        }
        var s = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11;
        return s.GetElement(0);
    }
}
