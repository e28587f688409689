using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using ClipGen.Backends;
using ClipGen.Modeling;
using ClipGen.Onnx;
using TorchSharp;
using static TorchSharp.torch;

namespace ClipGen.Benchmarks;

/// <summary>
/// One table, one run: PyTorch (glibc malloc and jemalloc), TorchSharp (glibc and jemalloc), ONNX Runtime fp32 and
/// ONNX Runtime int8 on the same towers and batches (random weights), with the ratios the targets are read from, and
/// cosine(int8, fp32) of every embedding. Usage:
/// <c>compare [--tasks ViT-B-32:image,ViT-B-32:text,RN50:image] [--batches 32,1] [--engines pytorch,pytorch-jemalloc,torch,torch-jemalloc,onnx,onnx-int8]
/// [--threads 2] [--runs 5] [--python /usr/bin/python3] [--jemalloc /usr/lib/x86_64-linux-gnu/libjemalloc.so.2]</c>.
/// PyTorch runs tools/pytorch_clip_bench.py in a child process (Debian's python3-torch with libopenblas0-openmp), without
/// OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE so that OpenBLAS picks its kernels for this CPU (the script prints which);
/// the jemalloc variants run in a child with LD_PRELOAD.
/// </summary>
public static class CompareBenchmark
{
    const string DefaultJemalloc = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2";

    sealed record Row(string Model, string Tower, int Batch, string Engine, double ItemsPerSecond);

    public static int Run(string[] args)
    {
        string Opt(string name, string fallback) => BenchUtil.Option(args, name, fallback);
        var tasks = Opt("tasks", "ViT-B-32:image,ViT-B-32:text,RN50:image").Split(',').Select(t => t.Split(':')).Select(p => (Model: p[0], Tower: p[1])).ToList();
        var batches = Opt("batches", "32,1").Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        var engines = Opt("engines", "pytorch,pytorch-jemalloc,torch,torch-jemalloc,onnx,onnx-int8").Split(',');
        int threads = int.Parse(Opt("threads", "2"), CultureInfo.InvariantCulture);
        int runs = int.Parse(Opt("runs", "5"), CultureInfo.InvariantCulture);
        var python = Opt("python", "/usr/bin/python3");
        var jemalloc = Opt("jemalloc", DefaultJemalloc);
        bool child = args.Contains("--child");
        bool cosine = !args.Contains("--no-cosine") && !child;

        var rows = new List<Row>();
        var inProcess = engines.Where(e => e is "torch" or "onnx" or "onnx-int8").ToArray();
        if (!child) Console.WriteLine($"load average {BenchUtil.LoadAverage()}; {threads} threads; median of {runs} runs after 1 warm-up, engines interleaved run by run");
        rows.AddRange(MeasureDotnet(tasks, batches, inProcess, threads, runs, cosine, child));
        if (child)
        {
            foreach (var r in rows) Console.WriteLine(JsonSerializer.Serialize(r));
            return 0;
        }
        if (engines.Contains("torch-jemalloc"))
        {
            // This program again (through the dotnet host when it was started as `dotnet ClipGen.Benchmarks.dll`).
            var self = Environment.ProcessPath!;
            string[] prefix = Path.GetFileNameWithoutExtension(self) == "dotnet" ? [typeof(CompareBenchmark).Assembly.Location] : [];
            rows.AddRange(ChildRows("torch-jemalloc", self, [.. prefix, "compare", "--child", "--engines", "torch", .. Forward(args)], jemalloc));
        }
        foreach (var (engine, preload) in new[] { ("pytorch", (string?)null), ("pytorch-jemalloc", jemalloc) })
        {
            if (!engines.Contains(engine)) continue;
            var script = Path.Combine(BenchUtil.RepoRoot(), "tools", "pytorch_clip_bench.py");
            rows.AddRange(ChildRows(engine, python, [script, "--tasks", string.Join(",", tasks.Select(t => t.Model + ":" + t.Tower)), "--batches", string.Join(",", batches),
                "--threads", threads.ToString(CultureInfo.InvariantCulture), "--runs", runs.ToString(CultureInfo.InvariantCulture)], preload)
                .Where(r => tasks.Contains((r.Model, r.Tower))));
        }
        Print(rows, tasks, batches, engines);
        Console.WriteLine($"load average {BenchUtil.LoadAverage()}; peak RSS of this process {BenchUtil.PeakRssBytes() / 1e9:0.00} GB");
        return 0;
    }

    static IEnumerable<string> Forward(string[] args)
    {
        foreach (var name in new[] { "tasks", "batches", "threads", "runs" })
        {
            int i = Array.IndexOf(args, "--" + name);
            if (i >= 0 && i + 1 < args.Length) { yield return "--" + name; yield return args[i + 1]; }
        }
    }

    /// <summary>TorchSharp and ORT (fp32, int8) in this process; each task's engines take turns run by run.</summary>
    static List<Row> MeasureDotnet(List<(string Model, string Tower)> tasks, int[] batches, string[] engines, int threads, int runs, bool cosine, bool quiet)
    {
        var rows = new List<Row>();
        if (engines.Length == 0 && !cosine) return rows;
        torch.set_num_threads(threads);
        var session = new OnnxClipSessionOptions { IntraOpNumThreads = threads };
        foreach (var model in tasks.Select(t => t.Model).Distinct())
        {
            var towers = tasks.Where(t => t.Model == model).Select(t => t.Tower).ToArray();
            torch.manual_seed(0);
            using var m = ClipModelFactory.Create(model);
            m.eval();
            var backends = new Dictionary<string, IClipBackend>(StringComparer.Ordinal);
            try
            {
                foreach (var e in engines.Union(cosine ? ["onnx", "onnx-int8"] : []))
                    backends[e] = e switch
                    {
                        "torch" => ClipBackends.Create(m, BackendKind.Torch),
                        "onnx" => ClipBackends.Create(m, BackendKind.Onnx, new ClipBackendOptions { Session = session }),
                        _ => ClipBackends.Create(m, BackendKind.Onnx, new ClipBackendOptions { Session = session, Precision = OnnxPrecision.Int8 }),
                    };
                var spec = m.Spec;
                if (cosine) Cosines(model, spec, backends["onnx"], backends["onnx-int8"], towers);
                foreach (var tower in towers)
                    foreach (int batch in batches)
                    {
                        using var scope = NewDisposeScope();
                        var (px, ids) = Inputs(spec, batch, seed: 1);
                        var times = engines.ToDictionary(e => e, _ => new List<double>());
                        for (int r = -1; r < runs; r++)   // r = -1: warm-up
                            foreach (var e in engines)
                            {
                                var b = backends[e];
                                var sw = Stopwatch.StartNew();
                                using (var y = tower == "image" ? b.EncodeImage(px) : b.EncodeText(ids)) { }
                                if (r >= 0) times[e].Add(sw.Elapsed.TotalSeconds);
                            }
                        foreach (var e in engines)
                        {
                            var t = times[e].Order().ToList();
                            var row = new Row(model, tower, batch, e, batch / t[t.Count / 2]);
                            rows.Add(row);
                            if (!quiet) Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {model} {tower} batch {batch} {e}: {row.ItemsPerSecond:0.00}/s (runs {string.Join(" ", t.Select(x => (batch / x).ToString("0.0", CultureInfo.InvariantCulture)))})"));
                        }
                    }
            }
            finally
            {
                foreach (var b in backends.Values) b.Dispose();
            }
        }
        return rows;
    }

    /// <summary>Random pixels ~ N(0, 1) and caption rows of random ids ending in the end token at a random length.</summary>
    static (Tensor Pixels, Tensor Ids) Inputs(Specs.ClipSpec spec, int batch, int seed)
    {
        var gen = new Generator((ulong)seed);
        var px = randn([batch, 3, spec.Vision.ImageSize, spec.Vision.ImageSize], generator: gen);
        int c = spec.Text.ContextLength, vocab = spec.Text.VocabSize;
        var rng = new Random(seed);
        var ids = new long[batch * c];
        for (int i = 0; i < batch; i++)
        {
            int len = rng.Next(c / 4, c + 1);
            ids[i * c] = vocab - 2;
            for (int j = 1; j < len - 1; j++) ids[i * c + j] = rng.Next(1, vocab - 2);
            ids[i * c + len - 1] = vocab - 1;
        }
        return (px, tensor(ids, [batch, c]));
    }

    /// <summary>cosine(int8, fp32) per embedding, 64 random images and captions.</summary>
    static void Cosines(string model, Specs.ClipSpec spec, IClipBackend fp32, IClipBackend int8, string[] towers)
    {
        using var scope = NewDisposeScope();
        var (px, ids) = Inputs(spec, 64, seed: 7);
        foreach (var tower in new[] { "image", "text" })
        {
            var a = tower == "image" ? fp32.EncodeImage(px) : fp32.EncodeText(ids);
            var b = tower == "image" ? int8.EncodeImage(px) : int8.EncodeText(ids);
            var cos = nn.functional.cosine_similarity(a, b, 1);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"cosine(int8, fp32) {model} {tower}, 64 random inputs: min {cos.min().ToDouble():0.00000}, mean {cos.mean().ToDouble():0.00000}"));
        }
    }

    static List<Row> ChildRows(string engine, string program, IEnumerable<string> arguments, string? preload)
    {
        var psi = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in arguments) psi.ArgumentList.Add(a);
        BenchUtil.WithoutOpenBlasOverrides(psi);
        if (preload is not null)
        {
            if (!File.Exists(preload)) throw new FileNotFoundException($"{preload} not found (Debian: apt-get install libjemalloc2)");
            psi.Environment["LD_PRELOAD"] = preload;
        }
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var rows = new List<Row>();
        string? line;
        while ((line = p.StandardOutput.ReadLine()) is not null)
        {
            if (!line.StartsWith('{')) continue;
            using var doc = JsonDocument.Parse(line);
            var root = doc.RootElement;
            if (root.TryGetProperty("config", out var config)) { Console.WriteLine($"{engine}: {config}"); continue; }
            var row = root.TryGetProperty("items_per_s", out var ips)
                ? new Row(root.GetProperty("model").GetString()!, root.GetProperty("tower").GetString()!, root.GetProperty("batch").GetInt32(), engine, ips.GetDouble())
                : JsonSerializer.Deserialize<Row>(line)! with { Engine = engine };
            rows.Add(row);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {row.Model} {row.Tower} batch {row.Batch} {engine}: {row.ItemsPerSecond:0.00}/s"));
        }
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{engine} failed ({program} exit {p.ExitCode}): {err.Result}");
        return rows;
    }

    static void Print(List<Row> rows, List<(string Model, string Tower)> tasks, int[] batches, string[] engines)
    {
        string Name(string e) => e switch
        {
            "pytorch" => "PyTorch", "pytorch-jemalloc" => "PyTorch+jemalloc", "torch" => "TorchSharp", "torch-jemalloc" => "TorchSharp+jemalloc",
            "onnx" => "ORT fp32", "onnx-int8" => "ORT int8", _ => e,
        };
        double? Get(string model, string tower, int batch, string e) =>
            rows.FirstOrDefault(r => r.Model == model && r.Tower == tower && r.Batch == batch && r.Engine == e)?.ItemsPerSecond;
        Console.WriteLine();
        Console.WriteLine("| model, tower | batch | " + string.Join(" | ", engines.Select(Name)) + " | int8 / fp32 ORT | TorchSharp / PyTorch (best allocator each) |");
        Console.WriteLine("|---|---:|" + string.Concat(engines.Select(_ => "---:|")) + "---:|---:|");
        foreach (int batch in batches)
            foreach (var (model, tower) in tasks)
            {
                var cells = engines.Select(e => Get(model, tower, batch, e) is { } v ? v.ToString(batch == 1 ? "0.0" : "0.0", CultureInfo.InvariantCulture) : "–");
                string Ratio(double? a, double? b) => a is { } x && b is { } y ? (x / y).ToString("0.00", CultureInfo.InvariantCulture) + "×" : "–";
                double? Max(params string[] es) => es.Select(e => Get(model, tower, batch, e)).Where(v => v is not null).DefaultIfEmpty(null).Max();
                Console.WriteLine($"| {model}, {tower} | {batch} | {string.Join(" | ", cells)} | {Ratio(Get(model, tower, batch, "onnx-int8"), Get(model, tower, batch, "onnx"))} | " +
                                  $"{Ratio(Max("torch", "torch-jemalloc"), Max("pytorch", "pytorch-jemalloc"))} |");
            }
        Console.WriteLine("(items/s; at batch 1 the inverse is the latency)");
    }
}
