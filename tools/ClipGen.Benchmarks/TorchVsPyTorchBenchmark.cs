using System.Diagnostics;
using System.Globalization;
using ClipGen.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace ClipGen.Benchmarks;

/// <summary>
/// TorchSharp against PyTorch eager, forward by forward under the same load: this process times one TorchSharp forward,
/// then asks a PyTorch child (<c>tools/pytorch_clip_bench.py --serve 1</c>, kept running) to time one of its own, and so
/// on, alternating; the ratio of the medians (and the median of the per-round ratios) is the number the target is read
/// from. A shared machine slows both alike within a round, which a table of separate runs cannot promise.
/// Usage: <c>torch-vs-pytorch [--tasks ViT-B-32:image,ViT-B-32:text,RN50:image] [--batches 32] [--threads 2] [--rounds 9]
/// [--python /usr/bin/python3] [--settle-ms 200] [--pytorch glibc,jemalloc]</c>. Each PyTorch child runs under glibc's
/// allocator or with jemalloc preloaded (the issue's two PyTorch columns); each takes its turn in every round.
/// Both sides use random weights of the same architecture and the same input shapes; inference mode; the same number of
/// intra-op threads. <c>--settle-ms</c> pauses between the two so that the other side's OpenMP threads stop spinning.
/// </summary>
public static class TorchVsPyTorchBenchmark
{
    public static int Run(string[] args)
    {
        string Opt(string name, string fallback) => BenchUtil.Option(args, name, fallback);
        var tasks = Opt("tasks", "ViT-B-32:image,ViT-B-32:text,RN50:image").Split(',').Select(t => t.Split(':')).Select(p => (Model: p[0], Tower: p[1])).ToList();
        var batches = Opt("batches", "32").Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        int threads = int.Parse(Opt("threads", "2"), CultureInfo.InvariantCulture);
        int rounds = int.Parse(Opt("rounds", "9"), CultureInfo.InvariantCulture);
        int settle = int.Parse(Opt("settle-ms", "200"), CultureInfo.InvariantCulture);
        var python = Opt("python", "/usr/bin/python3");
        var script = Path.Combine(BenchUtil.RepoRoot(), "tools", "pytorch_clip_bench.py");

        torch.set_num_threads(threads);
        var allocators = Opt("pytorch", File.Exists(Jemalloc) ? "glibc,jemalloc" : "glibc").Split(',');
        var children = allocators.Select(a => new PyTorchChild(python, script, threads, a)).ToList();
        Console.WriteLine($"MKL dispatch: {ClipGen.Backends.MklAmdDispatch.EnsureApplied().Detail}");
        Console.WriteLine($"torch-vs-pytorch: {threads} threads each, {rounds} rounds after 1 warm-up, alternating forward by forward; load average {BenchUtil.LoadAverage()}");
        Console.WriteLine();
        Console.WriteLine("| model, tower | batch | TorchSharp items/s | " + string.Join(" | ", children.Select(c => $"{c.Name} items/s")) + " | " +
            string.Join(" | ", children.Select(c => $"TorchSharp / {c.Name} (medians; per-round)")) + " | load |");
        Console.WriteLine("|---|---:|---:|" + string.Concat(Enumerable.Repeat("---:|", 2 * children.Count)) + "---|");
        foreach (var model in tasks.Select(t => t.Model).Distinct())
        {
            torch.manual_seed(0);
            using var m = ClipModelFactory.Create(model);
            m.eval();
            foreach (var (_, tower) in tasks.Where(t => t.Model == model))
                foreach (int batch in batches)
                {
                    using var scope = NewDisposeScope();
                    using var mode = inference_mode();
                    var x = tower == "image"
                        ? randn([batch, 3, m.Spec.Vision.ImageSize, m.Spec.Vision.ImageSize])
                        : randint(1, m.Spec.Text.VocabSize - 1, [batch, m.Spec.Text.ContextLength], dtype: int64).index_fill_(1, tensor(new long[] { m.Spec.Text.ContextLength - 1 }), m.Spec.Text.VocabSize - 1);
                    Tensor Forward() => tower == "image" ? m.EncodeImage(x) : m.EncodeText(x);
                    foreach (var c in children)
                        if (c.Ask($"task {model} {tower} {batch}") != "ready") throw new InvalidOperationException($"the {c.Name} child did not get ready");
                    var load = BenchUtil.LoadAverage();
                    var ts = new List<double>();
                    var pt = children.Select(_ => new List<double>()).ToList();
                    for (int r = -1; r < rounds; r++)
                    {
                        var sw = Stopwatch.StartNew();
                        using (Forward()) { }
                        double t = sw.Elapsed.TotalSeconds;
                        Thread.Sleep(settle);
                        var p = new double[children.Count];
                        for (int c = 0; c < children.Count; c++)
                        {
                            p[c] = double.Parse(children[c].Ask("run"), CultureInfo.InvariantCulture);
                            Thread.Sleep(settle);
                        }
                        if (r < 0) continue;
                        ts.Add(t);
                        for (int c = 0; c < children.Count; c++) pt[c].Add(p[c]);
                    }
                    double Median(IEnumerable<double> v) { var s = v.Order().ToList(); return s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2; }
                    double tsRate = batch / Median(ts);
                    var ptRates = pt.Select(v => batch / Median(v)).ToList();
                    var ratios = pt.Select((v, c) => string.Create(CultureInfo.InvariantCulture,
                        $"**{tsRate / ptRates[c]:0.00}×**; {Median(ts.Zip(v, (a, b) => b / a)):0.00}×"));
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"| {model}, {tower} | {batch} | {tsRate:0.00} | {string.Join(" | ", ptRates.Select(r => r.ToString("0.00", CultureInfo.InvariantCulture)))} | {string.Join(" | ", ratios)} | {load} → {BenchUtil.LoadAverage()} |"));
                    string Times(List<double> v) => string.Join(" ", v.Select(x => x.ToString("0.000", CultureInfo.InvariantCulture)));
                    Console.Error.WriteLine($"  {model} {tower} {batch}: TorchSharp s {Times(ts)}; " + string.Join("; ", children.Select((c, i) => $"{c.Name} s {Times(pt[i])}")));
                }
        }
        foreach (var c in children) c.Dispose();
        return 0;
    }

    const string Jemalloc = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2";

    /// <summary>A <c>pytorch_clip_bench.py --serve 1</c> child under glibc's allocator or with jemalloc preloaded.</summary>
    sealed class PyTorchChild : IDisposable
    {
        readonly Process _py;
        readonly Task<string> _stderr;

        public PyTorchChild(string python, string script, int threads, string allocator)
        {
            Name = allocator == "jemalloc" ? "PyTorch+jemalloc" : "PyTorch";
            var psi = new ProcessStartInfo(python) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in new[] { script, "--serve", "1", "--threads", threads.ToString(CultureInfo.InvariantCulture) }) psi.ArgumentList.Add(a);
            BenchUtil.WithoutOpenBlasOverrides(psi);
            if (allocator == "jemalloc") psi.Environment["LD_PRELOAD"] = Jemalloc;
            else if (allocator != "glibc") throw new ArgumentException($"--pytorch takes glibc and/or jemalloc, not '{allocator}'");
            _py = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {python}");
            _stderr = _py.StandardError.ReadToEndAsync();
        }

        public string Name { get; }

        public string Ask(string command)
        {
            _py.StandardInput.WriteLine(command);
            _py.StandardInput.Flush();
            while (true)
            {
                var line = _py.StandardOutput.ReadLine()
                    ?? throw new InvalidOperationException($"the {Name} child ended: {_stderr.Result}");
                if (!line.StartsWith('{')) return line;
                Console.WriteLine($"{Name}: {line}"); // its configuration line
            }
        }

        public void Dispose()
        {
            _py.StandardInput.Close();
            _py.WaitForExit();
            _py.Dispose();
        }
    }
}
