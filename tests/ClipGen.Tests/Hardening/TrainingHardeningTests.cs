using System.Diagnostics;
using ClipGen.Demo;
using ClipGen.Imaging;
using ClipGen.Modeling;
using ClipGen.Text;
using ClipGen.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ClipGen.Tests.Hardening;

/// <summary>Defects 9, 14 (training and image files) and 16 of issue 12.</summary>
public class TrainingHardeningTests
{
    static readonly Specs.ClipSpec Spec = ModelRegistry.Get("demo-tiny").Spec;

    static (ClipModule Model, ClipTrainer Trainer) Setup(int epochs, double lr = 3e-3, int seed = 4)
    {
        torch.manual_seed(seed);
        var model = ModelRegistry.Get("demo-tiny").Create();
        var trainer = new ClipTrainer(model, new TrainerOptions { Epochs = epochs, BatchSize = 8, LearningRate = lr, WarmupSteps = 1, Seed = seed, LoaderThreads = 2 },
            texts => BytesTokenizer.Instance.EncodeBatch(texts, Spec.Text.ContextLength));
        return (model, trainer);
    }

    static string Csv(string dir, params (string Name, byte[] Bytes)[] bad) => HostileCorpus.TrainingSet(dir, bad);

    static (int Code, string Out, string Err) Train(string csv, string output, params string[] more) =>
        TestUtil.Cli(["train", "--spec", "demo-tiny", "--train", csv, "--output", output, "--epochs", "2", "--batch-size", "8", "--lr", "1e-3",
            "--warmup", "1", "--threads", "1", .. more]);

    [Fact]
    public void Undecodable_images_are_skipped_and_reported_and_the_run_finishes()
    {
        var dir = TestUtil.TempDir();
        var cut = HostileCorpus.SolidPng(40, 36, 200, 0, 0)[..60];
        var csv = Csv(dir, ("zzz_empty.jpg", []), ("zzz_text.png", "not a png"u8.ToArray()), ("zzz_cut.png", cut));
        var (code, stdout, err) = Train(csv, Path.Combine(dir, "run"), "--batch-size", "19"); // one batch holds every row
        Assert.True(code == 0, err);
        Assert.Contains("zzz_empty.jpg: the file is empty", err);
        Assert.Contains("zzz_text.png: not a recognised image", err);
        Assert.Contains("zzz_cut.png", err);
        // Each bad file is reported once, not once per epoch.
        Assert.Single(err.Split('\n'), l => l.Contains("zzz_empty.jpg"));
        Assert.Equal(2, File.ReadAllLines(Path.Combine(dir, "run", "metrics.jsonl")).Length);
        Assert.Contains("done:", stdout);
    }

    [Fact]
    public void The_augmentation_path_checks_the_pixel_limit_before_decoding()
    {
        var dir = TestUtil.TempDir();
        var big = Path.Combine(dir, "big.png");
        File.WriteAllBytes(big, HostileCorpus.SolidPng(3000, 3000, 200, 0, 0));
        File.WriteAllText(Path.Combine(dir, "big.txt"), "a big red picture");
        var pre = new ImagePreprocessor(Spec.CreatePreprocessor().Options with { MaxPixels = 1_000_000 });
        var data = FileCaptionDataset.FromFolder(dir, pre);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<ClipGenException>(() => data.LoadImage(0, new float[3 * 32 * 32], new Random(1)));
        Assert.Contains("above the limit of 1,000,000", e.Message);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 8 << 20, "decoded pixels before refusing");
    }

    [Fact]
    public void A_non_finite_learning_rate_is_refused_before_training()
    {
        var e = Assert.Throws<ClipGenException>(() => Setup(1, lr: double.NaN));
        Assert.Equal("LearningRate must be a finite number >= 0, not NaN", e.Message);
        var dir = TestUtil.TempDir();
        var (code, _, err) = Train(Csv(dir), Path.Combine(dir, "run"), "--lr", "NaN");
        Assert.Equal(2, code);
        Assert.Contains("LearningRate must be a finite number", err);
    }

    /// <summary>A dataset whose images turn into NaN after the first <c>goodLoads</c> loads (as a blown-up model would give NaN losses).</summary>
    sealed class TurnsNaN(ICaptionDataset inner, int goodLoads) : ICaptionDataset
    {
        int _loads;
        public int Count => inner.Count;
        public int ImageSize => inner.ImageSize;
        public string Caption(int index) => inner.Caption(index);
        public void LoadImage(int index, Span<float> destination, Random? augment)
        {
            inner.LoadImage(index, destination, augment);
            if (Interlocked.Increment(ref _loads) > goodLoads) destination.Fill(float.NaN);
        }
    }

    [Fact]
    public void A_non_finite_loss_stops_training_and_keeps_the_last_good_checkpoint()
    {
        var (model, trainer) = Setup(3);
        using var _ = model;
        var dir = TestUtil.TempDir();
        var data = new TurnsNaN(new SyntheticShapes(32, Spec.Vision.ImageSize, 1, Spec.Preprocess), goodLoads: 32); // epoch 1 loads each of the 32 once
        var e = Assert.Throws<ClipGenException>(() => trainer.Train(data, dir));
        Assert.Contains("training diverged at epoch 2", e.Message);
        Assert.Contains("the loss is NaN", e.Message);
        Assert.Contains("the last good checkpoint", e.Message);
        var state = ClipTrainer.ReadState(dir)!;
        Assert.Equal(1, state.Epoch);
        Assert.Single(state.History);
        using var saved = TestUtil.Read(Path.Combine(dir, ClipTrainer.WeightsFile));
        Assert.All(saved.Tensors.Values, t => Assert.True(torch.isfinite(t).all().item<bool>()));
    }

    [Fact]
    public void An_initial_logit_scale_of_1e308_stops_at_the_first_step_and_saves_nothing()
    {
        var dir = TestUtil.TempDir();
        var text = HostileCorpus.ValidSpec(Fixtures.RepoRoot).Replace("init_logit_scale: 2.6592600369262695", "init_logit_scale: 1e308").Replace("name: demo-tiny", "name: huge-scale").Replace("class_name: DemoTiny", "class_name: HugeScale");
        File.WriteAllText(Path.Combine(dir, "spec.yaml"), text);
        var (code, _, err) = TestUtil.Cli("train", "--spec", Path.Combine(dir, "spec.yaml"), "--train", Csv(dir), "--output", Path.Combine(dir, "run"),
            "--epochs", "1", "--batch-size", "8", "--threads", "1");
        Assert.Equal(2, code);
        Assert.Contains("training diverged at epoch 1, step 1", err);
        Assert.Contains("nothing was saved", err);
        Assert.False(File.Exists(Path.Combine(dir, "run", ClipTrainer.WeightsFile)));
    }

    [Theory]
    [InlineData("\"Epoch\": -1", "\"Epoch\" is -1")]
    [InlineData("\"StepInEpoch\": -3", "\"StepInEpoch\" is -3")]
    [InlineData("\"Epoch\": \"one\"", "is not a trainer state")]
    [InlineData("\"Epoch\": 7", "do not agree")]
    public void A_damaged_trainer_state_is_refused_naming_the_key(string replacement, string expected)
    {
        var (model, trainer) = Setup(1);
        using var _ = model;
        var dir = TestUtil.TempDir();
        var data = new SyntheticShapes(16, Spec.Vision.ImageSize, 1, Spec.Preprocess);
        trainer.Train(data, dir);
        var statePath = Path.Combine(dir, ClipTrainer.StateFile);
        var json = System.Text.RegularExpressions.Regex.Replace(File.ReadAllText(statePath), "\"" + replacement.Split('"')[1] + "\": [^,\\n]+", replacement);
        File.WriteAllText(statePath, json);
        var (m2, t2) = Setup(2);
        using var __ = m2;
        var e = Assert.Throws<ClipGenException>(() => t2.Train(data, dir, resume: true));
        Assert.Contains("cannot resume", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void A_resumed_epoch_averages_all_of_its_steps()
    {
        var data = new SyntheticShapes(48, Spec.Vision.ImageSize, 2, Spec.Preprocess);
        var whole = new List<double>();
        var (a, ta) = Setup(2);
        // Tests share torch's global generator, so the second run copies the first one's initial weights explicitly.
        var initial = a.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
        using (a)
        {
            ta.EpochCompleted = r => whole.Add(r.TrainLoss);
            ta.Train(data, TestUtil.TempDir());
        }
        var dir = TestUtil.TempDir();
        var (b, tb) = Setup(2);
        using (b)
        {
            using (no_grad()) foreach (var (k, v) in b.state_dict()) v.copy_(initial[k]);
            using var cts = new CancellationTokenSource();
            tb.Progress = new Sync(p => { if (p.Step == 8) cts.Cancel(); }); // 6 steps per epoch: stop inside the second
            var stopped = tb.Train(data, dir, cancel: cts.Token);
            Assert.Equal(1, stopped.Epoch);
            Assert.Equal(2, stopped.StepInEpoch);
        }
        var resumed = new List<double>();
        var (c, tc) = Setup(2);
        using (c)
        {
            tc.EpochCompleted = r => resumed.Add(r.TrainLoss);
            tc.Train(data, dir, resume: true);
        }
        Assert.Equal(whole[1], Assert.Single(resumed), 10);
        var history = ClipTrainer.ReadState(dir)!.History;
        Assert.Equal(whole, history.Select(h => h.TrainLoss));
    }

    [Fact]
    public void The_metrics_log_and_curves_cover_the_whole_run_and_a_lost_line_comes_back()
    {
        var dir = TestUtil.TempDir();
        var csv = Csv(dir);
        var run = Path.Combine(dir, "run");
        var first = Train(csv, run);
        Assert.True(first.Code == 0, first.Err);
        var metrics = Path.Combine(run, "metrics.jsonl");
        var lines = File.ReadAllLines(metrics);
        Assert.Equal(2, lines.Length);
        // As if killed between the checkpoint and the metrics line of epoch 2.
        File.WriteAllLines(metrics, lines[..1]);
        File.Delete(Path.Combine(run, "curves.png"));
        var again = Train(csv, run, "--resume=true");
        Assert.True(again.Code == 0, again.Err);
        Assert.Equal(lines, File.ReadAllLines(metrics));
        Assert.True(File.Exists(Path.Combine(run, "curves.png")));

        // Three epochs in two invocations: the log has all three.
        var longer = Train(csv, run, "--resume=true", "--epochs", "3");
        Assert.True(longer.Code == 0, longer.Err);
        var three = File.ReadAllLines(metrics);
        Assert.Equal(3, three.Length);
        Assert.Equal(lines, three[..2]);
    }

    [Fact]
    public void An_existing_run_is_not_overwritten_without_resume_or_force()
    {
        var dir = TestUtil.TempDir();
        var csv = Csv(dir);
        var run = Path.Combine(dir, "run");
        Assert.Equal(0, Train(csv, run).Code);
        var before = File.ReadAllBytes(Path.Combine(run, ClipTrainer.WeightsFile));
        var (code, _, err) = Train(csv, run);
        Assert.Equal(2, code);
        Assert.Contains("already holds a training run; continue it with --resume, or pass --force", err);
        Assert.Equal(before, File.ReadAllBytes(Path.Combine(run, ClipTrainer.WeightsFile)));
        var forced = Train(csv, run, "--force", "--seed", "9");
        Assert.True(forced.Code == 0, forced.Err);
        Assert.NotEqual(before, File.ReadAllBytes(Path.Combine(run, ClipTrainer.WeightsFile)));

        var (model, trainer) = Setup(1);
        using var _ = model;
        var e = Assert.Throws<ClipGenException>(() => trainer.Train(new SyntheticShapes(16, Spec.Vision.ImageSize, 1, Spec.Preprocess), run));
        Assert.Contains("already holds a training run", e.Message);
        Assert.DoesNotContain("--", e.Message);
    }

    [Fact]
    public void Only_regular_files_are_read_as_images()
    {
        if (!OperatingSystem.IsLinux()) return;
        var dir = TestUtil.TempDir();
        var zero = Path.Combine(dir, "zero.png");
        File.CreateSymbolicLink(zero, "/dev/zero");
        var fifo = Path.Combine(dir, "fifo.jpg");
        using (var p = Process.Start("mkfifo", fifo)) p.WaitForExit();
        var pre = new ImagePreprocessor();
        Assert.Contains("not a regular file (a character device)", Assert.Throws<ClipGenException>(() => pre.Preprocess(zero)).Message);
        Assert.Contains("not a regular file (a FIFO)", Assert.Throws<ClipGenException>(() => pre.Preprocess(fifo)).Message);
        var big = Path.Combine(dir, "big.png");
        File.WriteAllBytes(big, new byte[4096]);
        var small = new ImagePreprocessor(PreprocessOptions.OpenAI with { MaxFileBytes = 1000 });
        Assert.Contains("over the 1,000 bytes allowed", Assert.Throws<ClipGenException>(() => small.Preprocess(big)).Message);
    }

    sealed class Sync(Action<TrainProgress> a) : IProgress<TrainProgress>
    {
        public void Report(TrainProgress value) => a(value);
    }
}
