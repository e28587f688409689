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
/// [--python /usr/bin/python3] [--settle-ms 200]</c>.
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
        var psi = new ProcessStartInfo(python) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { script, "--serve", "1", "--threads", threads.ToString(CultureInfo.InvariantCulture) }) psi.ArgumentList.Add(a);
        BenchUtil.WithoutOpenBlasOverrides(psi);
        using var py = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {python}");
        var stderr = py.StandardError.ReadToEndAsync();
        string Ask(string command)
        {
            py.StandardInput.WriteLine(command);
            py.StandardInput.Flush();
            while (true)
            {
                var line = py.StandardOutput.ReadLine()
                    ?? throw new InvalidOperationException($"the PyTorch child ended: {stderr.Result}");
                if (!line.StartsWith('{')) return line;
                Console.WriteLine($"pytorch: {line}"); // its configuration line
            }
        }

        Console.WriteLine($"torch-vs-pytorch: {threads} threads each, {rounds} rounds after 1 warm-up, alternating forward by forward; load average {BenchUtil.LoadAverage()}");
        Console.WriteLine();
        Console.WriteLine("| model, tower | batch | TorchSharp items/s | PyTorch items/s | TorchSharp / PyTorch (medians) | median of per-round ratios | load |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---|");
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
                    if (Ask($"task {model} {tower} {batch}") != "ready") throw new InvalidOperationException("the PyTorch child did not get ready");
                    var load = BenchUtil.LoadAverage();
                    var ts = new List<double>();
                    var pt = new List<double>();
                    for (int r = -1; r < rounds; r++)
                    {
                        var sw = Stopwatch.StartNew();
                        using (Forward()) { }
                        double t = sw.Elapsed.TotalSeconds;
                        Thread.Sleep(settle);
                        double p = double.Parse(Ask("run"), CultureInfo.InvariantCulture);
                        Thread.Sleep(settle);
                        if (r < 0) continue;
                        ts.Add(t); pt.Add(p);
                    }
                    double Median(IEnumerable<double> v) { var s = v.Order().ToList(); return s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2; }
                    double tsRate = batch / Median(ts), ptRate = batch / Median(pt);
                    double perRound = Median(ts.Zip(pt, (a, b) => b / a));
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"| {model}, {tower} | {batch} | {tsRate:0.00} | {ptRate:0.00} | **{tsRate / ptRate:0.00}×** | {perRound:0.00}× | {load} → {BenchUtil.LoadAverage()} |"));
                    Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"  {model} {tower} {batch}: TorchSharp s {string.Join(" ", ts.Select(v => v.ToString("0.000", CultureInfo.InvariantCulture)))}; PyTorch s {string.Join(" ", pt.Select(v => v.ToString("0.000", CultureInfo.InvariantCulture)))}"));
                }
        }
        py.StandardInput.Close();
        py.WaitForExit();
        return 0;
    }
}
