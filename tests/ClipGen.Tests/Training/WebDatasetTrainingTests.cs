using ClipGen.Imaging;
using ClipGen.Modeling;
using ClipGen.Tests.Datasets;
using ClipGen.Training;
using SkiaSharp;
using Xunit;

namespace ClipGen.Tests.Training;

/// <summary><c>clipgen train --train "shards/{…}.tar"</c>: shard and buffer shuffle, samples per epoch, the resumable position.</summary>
public class WebDatasetTrainingTests
{
    /// <summary>The CLI training tests' tiny spec (bytes tokenizer, 16 px).</summary>
    const string Spec = ClipGen.Tests.Cli.TrainCliTests.Spec;

    static readonly (string Name, SKColor Color)[] Colors = [("red", SKColors.Red), ("green", SKColors.Green), ("blue", SKColors.Blue), ("yellow", SKColors.Yellow)];

    /// <summary><paramref name="shards"/> shards of <paramref name="perShard"/> coloured PNGs with captions (keys numbered across shards).</summary>
    static string MakeShards(string dir, int shards, int perShard)
    {
        for (int s = 0; s < shards; s++)
        {
            var members = new List<(string, byte[])>();
            for (int i = 0; i < perShard; i++)
            {
                int n = s * perShard + i;
                var c = Colors[n % 4];
                using var bmp = new SKBitmap(20, 24);
                bmp.Erase(c.Color);
                using var png = bmp.Encode(SKEncodedImageFormat.Png, 100);
                members.Add(($"{n:D5}.png", png.ToArray()));
                members.Add(($"{n:D5}.txt", System.Text.Encoding.UTF8.GetBytes($"a {c.Name} picture")));
            }
            if (s == 0) members.Add(("99999.txt", "a caption without an image"u8.ToArray()));
            ClipGen.Tests.Datasets.DatasetTests.WriteTar(Path.Combine(dir, $"shard-{s:D5}.tar"), members);
        }
        return Path.Combine(dir, $"shard-{{00000..{shards - 1:D5}}}.tar");
    }

    [Fact]
    public void Epoch_orders_shuffle_shards_and_a_buffer_deterministically()
    {
        var dir = TestUtil.TempDir();
        var pattern = MakeShards(dir, 4, 10);
        var pre = new ImagePreprocessor(new PreprocessOptions { ImageSize = 8 });
        var data = WebDatasetCaptionDataset.Open(pattern, pre, shuffleBuffer: 5);
        Assert.Equal(40, data.Count);
        Assert.Contains(data.Problems, p => p.Reason.Contains("'99999'") && p.Reason.Contains("has no image"));
        var e0 = data.EpochOrder(seed: 1, epoch: 0);
        Assert.Equal(Enumerable.Range(0, 40), e0.Order());                       // each sample once per epoch
        Assert.Equal(e0, data.EpochOrder(seed: 1, epoch: 0));                     // a function of (seed, epoch)
        Assert.NotEqual(e0, data.EpochOrder(seed: 1, epoch: 1));
        Assert.NotEqual(e0, data.EpochOrder(seed: 2, epoch: 0));
        // A buffer of 5 lets a sample move at most a few places back: shards stay in runs (locality of reading).
        var shardOf = e0.Select(i => i / 10).ToArray();
        Assert.True(Enumerable.Range(1, 39).Count(i => shardOf[i] != shardOf[i - 1]) <= 12, string.Join(",", shardOf));
        Assert.NotEqual(Enumerable.Range(0, 40).Select(i => i / 10), shardOf);   // the shard order is shuffled (for this seed)

        // Buffer 1 streams in shard order; --train-num-samples beyond one pass goes on into another shard order.
        var plain = WebDatasetCaptionDataset.Open(pattern, pre, numSamples: 50, shuffleBuffer: 1);
        var o = plain.EpochOrder(seed: 3, epoch: 0);
        Assert.Equal(50, o.Length);
        Assert.Equal(Enumerable.Range(0, 40), o.Take(40).Order());
        for (int i = 1; i < 40; i++) if (o[i] / 10 == o[i - 1] / 10) Assert.Equal(o[i - 1] + 1, o[i]);
        Assert.Equal(10, o.Skip(40).Select(i => i / 10).Distinct().Single() * 0 + o.Skip(40).Count());

        // Images come from the shard by offset; captions are the txt members.
        Assert.Equal("a red picture", data.Caption(0));
        var pixels = new float[3 * 8 * 8];
        data.LoadImage(1, pixels, augment: null);
        var reference = pre.Preprocess(new MemoryStream(PngOf(SKColors.Green)));
        Assert.Equal(reference, pixels);
    }

    sealed class SyncProgress(Action<TrainProgress> report) : IProgress<TrainProgress>
    {
        public void Report(TrainProgress value) => report(value);
    }

    [Fact]
    public void An_interrupted_run_on_shards_resumes_at_the_same_sample()
    {
        var dir = TestUtil.TempDir();
        var pattern = MakeShards(dir, 3, 8);
        var spec = ClipGen.Specs.SpecResolver.ResolveSingle("wds.yaml", Spec);
        var data = WebDatasetCaptionDataset.Open(pattern, spec.CreatePreprocessor(), numSamples: 16, shuffleBuffer: 4);
        (ClipGen.Modeling.ClipModule, ClipTrainer) Setup()
        {
            var model = new ClipGen.Modeling.RuntimeClipModel(spec);
            var tok = ClipGen.Text.BytesTokenizer.Instance;
            return (model, new ClipTrainer(model, new TrainerOptions { Epochs = 2, BatchSize = 4, LearningRate = 3e-3, WarmupSteps = 1, Seed = 7, LoaderThreads = 2 },
                texts => tok.EncodeBatch(texts, 32)));
        }
        var (a, trainerA) = Setup();
        using var _a = a;
        var initial = a.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
        trainerA.Train(data, TestUtil.TempDir());

        var dirB = TestUtil.TempDir();
        var (b1, trainerB1) = Setup();
        using (b1)
        {
            using (TorchSharp.torch.no_grad()) foreach (var (k, v) in b1.state_dict()) v.copy_(initial[k]);
            using var cts = new CancellationTokenSource();
            trainerB1.Progress = new SyncProgress(p => { if (p.Step == 6) cts.Cancel(); });
            var stopped = trainerB1.Train(data, dirB, cancel: cts.Token);
            Assert.Equal((1, 2), (stopped.Epoch, stopped.StepInEpoch)); // inside the second epoch's shard stream
        }
        var (b2, trainerB2) = Setup();
        using var _b = b2;
        var final = trainerB2.Train(data, dirB, resume: true);
        Assert.Equal(8, final.GlobalStep);
        var sa = a.state_dict();
        var sb = b2.state_dict();
        foreach (var key in sa.Keys) Assert.True(sa[key].eq(sb[key]).all().item<bool>(), $"{key} differs after resume");
    }

    static byte[] PngOf(SKColor c)
    {
        using var bmp = new SKBitmap(20, 24);
        bmp.Erase(c);
        using var png = bmp.Encode(SKEncodedImageFormat.Png, 100);
        return png.ToArray();
    }

    [Fact]
    public void Train_reads_shards_and_resumes_only_with_the_same_shards()
    {
        var dir = TestUtil.TempDir();
        File.WriteAllText(Path.Combine(dir, "spec.yaml"), Spec);
        var pattern = MakeShards(dir, 3, 8);
        var run = Path.Combine(dir, "run");
        string[] Args(params string[] more) =>
            ["train", "--spec", Path.Combine(dir, "spec.yaml"), "--train", pattern, "--output", run, "--epochs", "1", "--batch-size", "4", "--warmup", "1", "--threads", "1", .. more];
        var (code, stdout, err) = TestUtil.Cli(Args("--train-num-samples", "16", "--shuffle-buffer", "6"));
        Assert.True(code == 0, err + stdout);
        Assert.Contains("16 samples per epoch from 3 shards (24 usable samples)", stdout);
        Assert.Contains("skipped", err); // the sample without an image
        Assert.Contains("\"samples_per_epoch\": 16", File.ReadAllText(Path.Combine(run, WebDatasetResume.FileName)));
        Assert.Contains("\"GlobalStep\": 4", File.ReadAllText(Path.Combine(run, ClipTrainer.StateFile)));

        // Resuming with another epoch length would point at other samples: refused with the reason.
        (code, _, err) = TestUtil.Cli(Args("--train-num-samples", "20", "--shuffle-buffer", "6", "--resume=true", "--epochs", "2"));
        Assert.Equal(2, code);
        Assert.Contains("cannot resume", err);
        // The same settings are accepted (the run is finished, so there is nothing left to do).
        (code, stdout, err) = TestUtil.Cli(Args("--train-num-samples", "16", "--shuffle-buffer", "6", "--resume=true"));
        Assert.True(code == 0, err + stdout);
        (code, _, err) = TestUtil.Cli("train", "--spec", Path.Combine(dir, "spec.yaml"), "--train", Path.Combine(dir, "x.csv"), "--output", run, "--train-num-samples", "3");
        Assert.Equal(2, code);
        Assert.Contains("--train-num-samples applies to WebDataset shards", err);
    }
}
