using System.Globalization;
using ClipGen.Backends;
using ClipGen.Modeling;
using ClipGen.Onnx;
using TorchSharp;
using static TorchSharp.torch;

namespace ClipGen.Benchmarks;

/// <summary>
/// Image and text encoding throughput of the TorchSharp and ONNX Runtime backends (random weights), with achieved GFLOP/s
/// against the machine's nominal peak, and the fusions ORT applied. Usage:
/// <c>backends [--models ViT-B-32,RN50] [--batches 1,8,32] [--towers image,text] [--backends torch,onnx] [--threads 2] [--concurrent 1] [--runs 3]</c>.
/// </summary>
public static class BackendBenchmark
{
    /// <summary>
    /// Forward GFLOPs per item (multiply-adds × 2), as in the CLIP and open_clip model cards; ViT-B-16-SigLIP from open_clip's
    /// docs/model_profile.csv (image 35.42, text 11.02).
    /// </summary>
    static readonly Dictionary<string, (double Image, double Text)> Gflops = new(StringComparer.Ordinal)
    {
        ["ViT-B-32"] = (8.82, 5.96),
        ["RN50"] = (11.6, 5.96),
        ["ViT-B-16-SigLIP"] = (35.42, 11.02),
    };

    /// <summary>
    /// The issue's nominal peak (2 cores × 2.1 GHz × 64 FLOP/cycle). This machine has AVX2 with two FMA pipes (32 FLOP/cycle),
    /// so the benchmark also measures the real arithmetic peak (<see cref="GemmBenchmark.FmaPeak"/>) and reports against that.
    /// </summary>
    const double NominalPeakGflops = 268;

    public static int Run(string[] args)
    {
        string Opt(string name, string fallback) => BenchUtil.Option(args, name, fallback);
        var models = Opt("models", "ViT-B-32,RN50").Split(',');
        var batches = Opt("batches", "1,8,32").Split(',').Select(int.Parse).ToArray();
        int threads = int.Parse(Opt("threads", "2"), CultureInfo.InvariantCulture);
        int runs = int.Parse(Opt("runs", "3"), CultureInfo.InvariantCulture);
        var towers = Opt("towers", "image,text").Split(',');
        var backendKinds = Opt("backends", "torch,onnx").Split(',');

        int concurrent = int.Parse(Opt("concurrent", "1"), CultureInfo.InvariantCulture);
        torch.set_num_threads(Math.Max(1, threads / concurrent));
        var session = new OnnxClipSessionOptions
        {
            IntraOpNumThreads = Math.Max(1, threads / concurrent),
            ConcurrentRuns = concurrent,
            OptimizationLevel = Microsoft.ML.OnnxRuntime.GraphOptimizationLevel.ORT_ENABLE_ALL,
        };
        Console.WriteLine($"ORT and TorchSharp: {concurrent} concurrent run(s) per batch × {session.IntraOpNumThreads} thread(s) each");
        double peak = GemmBenchmark.FmaPeak(threads);
        Console.WriteLine($"threads {threads}; torch.get_num_threads() = {torch.get_num_threads()}; median of {runs} runs after 1 warm-up; " +
                          $"measured FMA peak {peak:0.0} GFLOP/s (nominal {NominalPeakGflops})");
        Console.WriteLine("| model | tower | batch | backend | items/s | GFLOP/s | % of measured peak | % of nominal 268 |");
        Console.WriteLine("|---|---|---:|---|---:|---:|---:|---:|");
        foreach (var name in models)
        {
            torch.manual_seed(0);
            using var model = ClipModelFactory.Create(name);
            model.eval();
            var spec = model.Spec;
            var (gImage, gText) = Gflops.TryGetValue(name, out var g) ? g : (double.NaN, double.NaN);
            using var torchBackend = ClipBackends.Create(model, BackendKind.Torch, new ClipBackendOptions
            {
                TorchConcurrentRuns = concurrent,
                TorchThreads = Math.Max(1, threads / concurrent),
            });
            using var ortBackend = ClipBackends.Create(model, BackendKind.Onnx, new ClipBackendOptions { Session = session });
            foreach (int batch in batches)
            {
                using var scope = NewDisposeScope();
                var px = randn(batch, 3, spec.Vision.ImageSize, spec.Vision.ImageSize);
                var ids = randint(1, spec.Text.VocabSize - 1, [batch, spec.Text.ContextLength]);
                ids[TensorIndex.Colon, spec.Text.ContextLength - 1] = tensor((long)spec.Text.VocabSize - 1);
                foreach (var (tower, gf) in new[] { ("image", gImage), ("text", gText) }.Where(t => towers.Contains(t.Item1)))
                {
                    foreach (var backend in new IClipBackend[] { torchBackend, ortBackend }
                                 .Where(b => backendKinds.Contains(b.Kind == BackendKind.Torch ? "torch" : "onnx")))
                    {
                        double s = BenchUtil.MedianSeconds(() =>
                        {
                            using var r = tower == "image" ? backend.EncodeImage(px) : backend.EncodeText(ids);
                        }, warmup: 1, runs: runs);
                        double perSec = batch / s, gfs = perSec * gf;
                        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                            $"| {name} | {tower} | {batch} | {(backend.Kind == BackendKind.Torch ? "TorchSharp" : "ORT")} | {perSec:0.0} | {gfs:0.0} | {100 * gfs / peak:0.0}% | {100 * gfs / NominalPeakGflops:0.0}% |"));
                    }
                }
            }
            // Which fusions ORT applied to the image and text graphs.
            var dir = Directory.CreateTempSubdirectory("clipgen-bench-").FullName;
            try
            {
                foreach (var path in ClipOnnxExporter.Export(model, ClipOnnxKind.All, dir).Take(2))
                {
                    var hist = OnnxClipSession.OptimizedOpHistogram(path, session);
                    Console.WriteLine($"{name} {Path.GetFileName(path)} after ORT optimisation: " +
                        string.Join(", ", hist.OrderByDescending(kv => kv.Value).Select(kv => $"{kv.Key} {kv.Value}")));
                }
            }
            finally { Directory.Delete(dir, recursive: true); }
            Console.WriteLine($"peak RSS {BenchUtil.PeakRssBytes() / 1e9:0.00} GB");
        }
        return 0;
    }
}
