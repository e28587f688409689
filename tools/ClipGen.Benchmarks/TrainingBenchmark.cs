using System.Diagnostics;
using ClipGen.Modeling;
using ClipGen.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace ClipGen.Benchmarks;

/// <summary>
/// Training throughput: forward, InfoNCE, backward, gradient clipping and an AdamW step on random batches
/// (data loading excluded). Usage: <c>train [--model demo-tiny] [--batch 128] [--steps 20] [--threads 2]</c>.
/// </summary>
public static class TrainingBenchmark
{
    public static int Run(string[] args)
    {
        string model = "demo-tiny";
        int batch = 128, steps = 20, threads = Environment.ProcessorCount;
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            switch (args[i])
            {
                case "--model": model = args[i + 1]; break;
                case "--batch": batch = int.Parse(args[i + 1]); break;
                case "--steps": steps = int.Parse(args[i + 1]); break;
                case "--threads": threads = int.Parse(args[i + 1]); break;
            }
        }
        torch.set_num_threads(threads);
        torch.manual_seed(0);
        using var m = ClipModelFactory.Create(model);
        m.train();
        var spec = m.Spec;
        var groups = ParameterGroups.Split(m);
        using var opt = new AdamW(groups);
        using var px = randn(batch, 3, spec.Vision.ImageSize, spec.Vision.ImageSize);
        using var ids = randint(1, spec.Text.VocabSize - 1, [batch, spec.Text.ContextLength], dtype: ScalarType.Int64);
        using (no_grad()) ids[TensorIndex.Colon, spec.Text.ContextLength - 1] = tensor((long)spec.Text.VocabSize - 1);
        void Step()
        {
            using var scope = NewDisposeScope();
            opt.ZeroGrad();
            var o = m.forward(px, ids);
            var loss = ClipLoss.InfoNce(o.LogitsPerImage, o.LogitsPerText);
            loss.backward();
            nn.utils.clip_grad_norm_(groups.Select(g => g.Tensor).ToArray(), 1.0);
            opt.Step(1e-4);
        }
        Step(); // warm-up
        var sw = Stopwatch.StartNew();
        for (int s = 0; s < steps; s++) Step();
        var seconds = sw.Elapsed.TotalSeconds;
        Console.WriteLine($"{model}: batch {batch}, {steps} steps, {threads} threads: {batch * steps / seconds:F1} images/s ({seconds / steps:F3} s/step), peak RSS {BenchUtil.PeakRssBytes() / 1e9:F2} GB");
        return 0;
    }
}
