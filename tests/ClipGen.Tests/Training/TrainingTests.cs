using ClipGen.Demo;
using ClipGen.Imaging;
using ClipGen.Modeling;
using ClipGen.Specs;
using ClipGen.Text;
using ClipGen.Training;
using SkiaSharp;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ClipGen.Tests.Training;

public class LossTests
{
    [Fact]
    public void InfoNce_matches_hand_computed_value()
    {
        // logits_per_image [[2,1],[0,3]]: rows give log(1+e^-1) and log(1+e^-3); columns give log(1+e^-2) twice.
        using var lpi = tensor(new float[] { 2, 1, 0, 3 }, [2, 2]);
        using var lpt = lpi.t();
        using var loss = ClipLoss.InfoNce(lpi, lpt);
        double expected = ((Math.Log(1 + Math.Exp(-1)) + Math.Log(1 + Math.Exp(-3))) / 2 + Math.Log(1 + Math.Exp(-2))) / 2;
        Assert.Equal(0.1539263, expected, 6);
        Assert.Equal(expected, loss.item<float>(), 5);
    }

    [Fact]
    public void SigLip_matches_hand_computed_value()
    {
        using var logits = tensor(new float[] { 2, 1, 0, 3 }, [2, 2]);
        using var loss = ClipLoss.SigLip(logits);
        static double LogSigmoid(double z) => -Math.Log(1 + Math.Exp(-z));
        double expected = -(LogSigmoid(2) + LogSigmoid(-1) + LogSigmoid(-0) + LogSigmoid(3)) / 2;
        Assert.Equal(expected, loss.item<float>(), 5);
    }

    [Fact]
    public void Cosine_schedule_warms_up_then_decays_to_zero()
    {
        var s = new CosineSchedule(1.0, 10, 110);
        Assert.Equal(0.1, s.At(0), 12);
        Assert.Equal(1.0, s.At(9), 12);
        Assert.Equal(1.0, s.At(10), 12);
        Assert.Equal(0.5, s.At(60), 12);
        Assert.Equal(0.0, s.At(110), 12);
    }
}

public class WeightDecayTests
{
    [Fact]
    public void Decay_applies_exactly_to_multi_dimensional_non_embedding_weights()
    {
        torch.manual_seed(3);
        using var model = ClipModelFactory.Create("tiny-rn");
        var groups = ParameterGroups.Split(model);
        var decayed = groups.Where(g => g.Decay).Select(g => g.Name).ToHashSet();
        Assert.Contains("visual.conv1.weight", decayed);
        Assert.Contains("visual.attnpool.q_proj.weight", decayed);
        Assert.Contains("transformer.resblocks.0.attn.in_proj_weight", decayed);
        Assert.Contains("transformer.resblocks.1.mlp.c_fc.weight", decayed);
        Assert.Contains("text_projection", decayed);
        foreach (var name in new[] { "logit_scale", "token_embedding.weight", "positional_embedding", "visual.attnpool.positional_embedding",
                                     "ln_final.weight", "ln_final.bias", "visual.bn1.weight", "visual.bn1.bias", "transformer.resblocks.0.attn.in_proj_bias" })
            Assert.DoesNotContain(name, decayed);
        Assert.All(groups.Where(g => g.Decay), g => Assert.True(g.Tensor.dim() >= 2));

        // With zero gradients Adam's update is zero, so one step shows the decay alone: p·(1 − lr·wd) exactly where it applies.
        var before = groups.ToDictionary(g => g.Name, g => g.Tensor.detach().clone());
        foreach (var g in groups) g.Tensor.grad = zeros_like(g.Tensor);
        using var opt = new AdamW(groups, weightDecay: 0.5);
        opt.Step(0.1);
        foreach (var g in groups)
        {
            using var expected = g.Decay ? before[g.Name] * (1 - 0.1 * 0.5) : before[g.Name].clone();
            Assert.True(expected.eq(g.Tensor.detach()).all().item<bool>(), $"{g.Name} (decay {g.Decay})");
        }
    }

    [Fact]
    public void Freezing_the_image_tower_leaves_it_out()
    {
        using var model = ClipModelFactory.Create("tiny-vit");
        var groups = ParameterGroups.Split(model, freezeImageTower: true);
        Assert.DoesNotContain(groups, g => g.Name.StartsWith("visual.", StringComparison.Ordinal));
        Assert.All(model.named_parameters().Where(p => p.name.StartsWith("visual.", StringComparison.Ordinal)), p => Assert.False(p.parameter.requires_grad));
        Assert.Contains(groups, g => g.Name == "token_embedding.weight");
    }
}

public class TrainerTests
{
    const string TinySpec = """
        name: train-test
        embed_dim: 16
        activation: quick_gelu
        init_logit_scale: 2.6592600369262695
        vision:
          image_size: 16
          patch_size: 8
          layers: 1
          width: 32
          head_width: 16
        text:
          context_length: 48
          vocab_size: 259
          width: 32
          heads: 2
          layers: 1
          eos_id: 258
        tokenizer:
          kind: bytes
        preprocess:
          mean: [0.5, 0.5, 0.5]
          std: [0.25, 0.25, 0.25]
          interpolation: bicubic
          resize_mode: shortest
        """;

    static ClipSpec Spec => SpecResolver.ResolveSingle("train-test.yaml", TinySpec);

    static (ClipModule Model, ClipTrainer Trainer, SyntheticShapes Data) Setup(int seed, int epochs)
    {
        torch.manual_seed(seed);
        var model = new RuntimeClipModel(Spec);
        var tok = BytesTokenizer.Instance;
        var trainer = new ClipTrainer(model, new TrainerOptions { Epochs = epochs, BatchSize = 16, LearningRate = 3e-3, WarmupSteps = 2, Seed = seed, LoaderThreads = 2 },
            texts => tok.EncodeBatch(texts, 48));
        return (model, trainer, new SyntheticShapes(64, 16, seed, Spec.Preprocess));
    }

    [Fact]
    public void Loss_decreases_on_a_tiny_run()
    {
        var (model, trainer, data) = Setup(1, 6);
        using var _ = model;
        var losses = new List<double>();
        trainer.EpochCompleted = r => losses.Add(r.TrainLoss);
        trainer.Train(data, TestUtil.TempDir());
        Assert.Equal(6, losses.Count);
        Assert.True(losses[^1] < losses[0] - 0.1, $"loss went {string.Join(" → ", losses.Select(l => l.ToString("F3")))}");
    }

    [Fact]
    public void Resume_after_interruption_gives_bit_identical_weights()
    {
        var dirA = TestUtil.TempDir();
        var (a, trainerA, dataA) = Setup(5, 2);
        using var __ = a;
        // Other tests run in parallel and share torch's global generator, so copy the initial weights explicitly.
        var initial = a.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
        trainerA.Train(dataA, dirA);

        var dirB = TestUtil.TempDir();
        var (b1, trainerB1, dataB) = Setup(5, 2);
        using (b1)
        {
            using (no_grad()) foreach (var (k, v) in b1.state_dict()) v.copy_(initial[k]);
            using var cts = new CancellationTokenSource();
            trainerB1.Progress = new SyncProgress(p => { if (p.Step == 5) cts.Cancel(); });
            var stopped = trainerB1.Train(dataB, dirB, cancel: cts.Token);
            Assert.Equal(1, stopped.Epoch);        // stopped in the second epoch (4 steps per epoch)
            Assert.Equal(1, stopped.StepInEpoch);
            Assert.False(stopped.Finished);
        }
        // A new process would start from fresh weights; use another seed so that nothing carries over by accident.
        var (b2, trainerB2, dataB2) = Setup(5, 2);
        using var ___ = b2;
        using (no_grad()) foreach (var p in b2.parameters()) p.normal_();
        var final = trainerB2.Train(dataB2, dirB, resume: true);
        Assert.True(final.Finished);
        Assert.Equal(8, final.GlobalStep);

        var sa = a.state_dict();
        var sb = b2.state_dict();
        Assert.Equal(sa.Keys.Order(), sb.Keys.Order());
        foreach (var key in sa.Keys) Assert.True(sa[key].eq(sb[key]).all().item<bool>(), $"{key} differs after resume");
    }

    [Fact]
    public void Resume_with_other_settings_is_refused()
    {
        var dir = TestUtil.TempDir();
        var (m, t, d) = Setup(2, 1);
        using (m) t.Train(d, dir);
        torch.manual_seed(2);
        using var model = new RuntimeClipModel(Spec);
        var other = new ClipTrainer(model, new TrainerOptions { Epochs = 2, BatchSize = 32, Seed = 2 }, x => BytesTokenizer.Instance.EncodeBatch(x, 48));
        var e = Assert.Throws<ClipGenException>(() => other.Train(d, dir, resume: true));
        Assert.Contains("cannot resume", e.Message);
    }

    sealed class SyncProgress(Action<TrainProgress> a) : IProgress<TrainProgress>
    {
        public void Report(TrainProgress value) => a(value);
    }
}

public class DatasetTests
{
    [Fact]
    public void Corrupted_csv_rows_are_reported_with_line_numbers_and_skipped()
    {
        var dir = TestUtil.TempDir();
        using (var bmp = new SKBitmap(8, 8))
        {
            bmp.Erase(SKColors.Red);
            using var data = bmp.Encode(SKEncodedImageFormat.Png, 100);
            File.WriteAllBytes(Path.Combine(dir, "a.png"), data.ToArray());
        }
        var csv = Path.Combine(dir, "train.csv");
        File.WriteAllText(csv, string.Join("\n",
            "filepath,caption",
            "a.png,a red square",                 // line 2: good
            "a.png,too,many,fields",              // line 3: bad field count
            "missing.png,a ghost",                // line 4: file does not exist
            "a.png,",                             // line 5: empty caption
            "\"a.png\",\"a quoted, caption\"",    // line 6: good, quoted comma
            "a.png,\"multi",                      // line 7-8: quoted newline, good
            "line caption\"",
            "a.png,\"unterminated") + "\n");      // line 9: unterminated quote
        var ds = FileCaptionDataset.FromCsv(csv, new ImagePreprocessor(new PreprocessOptions { ImageSize = 8 }));
        Assert.Equal(3, ds.Count);
        Assert.Equal("a quoted, caption", ds.Caption(1));
        Assert.Equal("multi\nline caption", ds.Caption(2));
        var lines = ds.Problems.Select(p => p.Line).ToArray();
        Assert.Equal(new[] { 3, 4, 5, 9 }, lines);
        Assert.Contains("expected 2 fields, found 4", ds.Problems[0].Reason);
        Assert.Contains("does not exist", ds.Problems[1].Reason);
        Assert.Contains("empty caption", ds.Problems[2].Reason);
        Assert.Contains("unterminated", ds.Problems[3].Reason);
        var pixels = new float[3 * 8 * 8];
        ds.LoadImage(0, pixels, null);
        ds.LoadImage(0, pixels, new Random(1)); // augmented path works too
    }

    [Fact]
    public void Csv_without_the_columns_is_a_clear_error()
    {
        var dir = TestUtil.TempDir();
        var csv = Path.Combine(dir, "x.csv");
        File.WriteAllText(csv, "image,text\na.png,b\n");
        var e = Assert.Throws<ClipGenException>(() => FileCaptionDataset.FromCsv(csv, new ImagePreprocessor()));
        Assert.Contains("no 'filepath' column", e.Message);
        Assert.DoesNotContain("--", e.Message); // the CLI names --image-column / --caption-column
        Assert.Equal(ClipGenSetting.ListColumns, e.Setting);
    }

    [Fact]
    public void Synthetic_shapes_are_deterministic_and_captioned()
    {
        var a = new SyntheticShapes(10, 32, 3, ModelRegistry.Get("demo-tiny").Spec.Preprocess);
        var b = new SyntheticShapes(10, 32, 3, ModelRegistry.Get("demo-tiny").Spec.Preprocess);
        var x = new float[3 * 32 * 32];
        var y = new float[3 * 32 * 32];
        a.LoadImage(4, x, null);
        b.LoadImage(4, y, null);
        Assert.Equal(x, y);
        Assert.Equal(a.Caption(4), b.Caption(4));
        var s = a.Scene(4);
        Assert.Contains(SyntheticShapes.Colors[s.Color], a.Caption(4));
        Assert.Contains(SyntheticShapes.Shapes[s.Shape], a.Caption(4));
    }
}
