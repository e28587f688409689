using SkiaSharp;
using Xunit;

namespace ClipGen.Tests.Cli;

public class TrainCliTests
{
    internal const string Spec = """
        name: cli-train-test
        embed_dim: 16
        activation: gelu
        init_logit_scale: 2.6592600369262695
        vision:
          image_size: 16
          patch_size: 8
          layers: 1
          width: 32
          head_width: 16
        text:
          context_length: 32
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

    static void Png(string path, SKColor color)
    {
        using var bmp = new SKBitmap(20, 24);
        bmp.Erase(color);
        using var data = bmp.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, data.ToArray());
    }

    [Fact]
    public void Train_from_csv_with_evaluation_writes_metrics_plot_and_checkpoint()
    {
        var dir = TestUtil.TempDir();
        File.WriteAllText(Path.Combine(dir, "spec.yaml"), Spec);
        var colors = new (string Name, SKColor Color)[] { ("red", SKColors.Red), ("green", SKColors.Green), ("blue", SKColors.Blue), ("yellow", SKColors.Yellow) };
        var rows = new List<string> { "filepath,caption" };
        for (int i = 0; i < 16; i++)
        {
            var c = colors[i % 4];
            Png(Path.Combine(dir, $"img{i}.png"), c.Color);
            rows.Add($"img{i}.png,a {c.Name} picture");
        }
        rows.Insert(3, "img0.png"); // line 4: a corrupted row (one field)
        File.WriteAllText(Path.Combine(dir, "train.csv"), string.Join("\n", rows) + "\n");
        File.WriteAllText(Path.Combine(dir, "val.csv"), "filepath,caption\nimg0.png,a red picture\nimg1.png,a green picture\n");
        foreach (var (name, color) in colors)
        {
            Directory.CreateDirectory(Path.Combine(dir, "zs", name));
            Png(Path.Combine(dir, "zs", name, "x.png"), color);
        }
        var output = Path.Combine(dir, "run");
        var (code, stdout, stderr) = TestUtil.Cli("train", "--spec", Path.Combine(dir, "spec.yaml"), "--train", Path.Combine(dir, "train.csv"),
            "--val", Path.Combine(dir, "val.csv"), "--zeroshot-folder", Path.Combine(dir, "zs"), "--epochs", "2", "--batch-size", "8",
            "--lr", "1e-3", "--warmup", "1", "--output", output, "--threads", "1");
        Assert.True(code == 0, stderr);
        Assert.Contains("train.csv:4: expected 2 fields, found 1", stderr);
        Assert.Contains("(1 bad rows skipped)", stdout);
        var metrics = File.ReadAllLines(Path.Combine(output, "metrics.jsonl"));
        Assert.Equal(2, metrics.Length);
        Assert.Contains("\"zero_shot_accuracy\"", metrics[1]);
        Assert.Contains("\"image_to_text_recall@5\"", metrics[1]);
        Assert.True(new FileInfo(Path.Combine(output, "curves.png")).Length > 1000);
        Assert.True(File.Exists(Path.Combine(output, "checkpoint.safetensors")));

        // A finished run resumes to "done" at once; a missing data file is a one-line error.
        var again = TestUtil.Cli("train", "--spec", Path.Combine(dir, "spec.yaml"), "--train", Path.Combine(dir, "train.csv"), "--epochs", "2",
            "--batch-size", "8", "--output", output, "--threads", "1", "--resume"); // a flag as the last argument
        Assert.True(again.Code == 0, again.Err);
        var missing = TestUtil.Cli("train", "--spec", Path.Combine(dir, "spec.yaml"), "--train", Path.Combine(dir, "nope.csv"), "--output", output);
        Assert.Equal(2, missing.Code);
        Assert.Contains("does not exist", missing.Err);
    }
}
