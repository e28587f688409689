using System.Buffers.Binary;
using System.CommandLine;
using System.Text;
using ClipGen.Cli;
using SkiaSharp;
using Xunit;

namespace ClipGen.Tests.Cli;

/// <summary>open_clip's training command line (python -m open_clip_train.main …) runs as <c>clipgen train</c>.</summary>
public class OpenClipTrainCliTests
{
    [Fact]
    public void Open_clips_flags_are_aliases_of_ours()
    {
        var r = CommandRegistry.Root().Parse(["train", "--train-data=train.csv", "--val-data=val.csv", "--csv-img-key", "filepath", "--csv-caption-key", "title",
            "--imagenet-val=DIR", "--warmup", "10000", "--batch-size=128", "--lr=1e-3", "--wd=0.1", "--epochs=30", "--workers=8", "--model", "RN50",
            "--save-frequency", "1", "--zeroshot-frequency", "1", "--report-to", "tensorboard"]);
        Assert.Empty(r.Errors);
        Assert.Empty(r.UnmatchedTokens);
        Assert.Equal("train.csv", r.GetValue<string>("--train"));
        Assert.Equal("val.csv", r.GetValue<string>("--val"));
        Assert.Equal("filepath", r.GetValue<string>("--image-column"));
        Assert.Equal("title", r.GetValue<string>("--caption-column"));
        Assert.Equal("DIR", r.GetValue<string>("--zeroshot-folder"));
        Assert.Equal(10000, r.GetValue<int>("--warmup"));
        Assert.Equal(128, r.GetValue<int>("--batch-size"));
        Assert.Equal(1e-3, r.GetValue<double>("--lr"));
        Assert.Equal(0.1, r.GetValue<double>("--weight-decay"));
        Assert.Equal(30, r.GetValue<int>("--epochs"));
        Assert.Equal(8, r.GetValue<int?>("--workers"));
        Assert.Equal("RN50", r.GetValue<string>("--spec"));
        Assert.Equal(1, r.GetValue<int>("--save-frequency"));
        Assert.Equal(["tensorboard"], r.GetValue<string[]>("--report-to") ?? []);

        var (code, _, err) = TestUtil.Cli("train", "--model", "RN50", "--train-data", "t.csv", "--output", "o", "--report-to", "wandb");
        Assert.Equal(2, code);
        Assert.Contains("--report-to takes tensorboard or none, not 'wandb'", err);
    }

    [Fact]
    public void Open_clip_command_trains_evaluates_saves_and_writes_tensorboard_events()
    {
        var dir = TestUtil.TempDir();
        File.WriteAllText(Path.Combine(dir, "spec.yaml"), TrainCliTests.Spec);
        var colors = new (string Name, SKColor Color)[] { ("red", SKColors.Red), ("green", SKColors.Green), ("blue", SKColors.Blue), ("yellow", SKColors.Yellow), ("white", SKColors.White), ("black", SKColors.Black) };
        var rows = new List<string> { "filepath,title" };
        for (int i = 0; i < 16; i++)
        {
            var c = colors[i % colors.Length];
            Png(Path.Combine(dir, $"img{i}.png"), c.Color);
            rows.Add($"img{i}.png,a {c.Name} picture");
        }
        File.WriteAllText(Path.Combine(dir, "train.csv"), string.Join("\n", rows) + "\n");
        File.WriteAllText(Path.Combine(dir, "val.csv"), "filepath,title\nimg0.png,a red picture\nimg1.png,a green picture\n");
        foreach (var (name, color) in colors)
        {
            Directory.CreateDirectory(Path.Combine(dir, "imagenet", name));
            Png(Path.Combine(dir, "imagenet", name, "x.png"), color);
        }
        var output = Path.Combine(dir, "run");
        var (code, stdout, stderr) = TestUtil.Cli("train", $"--train-data={Path.Combine(dir, "train.csv")}", $"--val-data={Path.Combine(dir, "val.csv")}",
            "--csv-img-key", "filepath", "--csv-caption-key", "title", $"--imagenet-val={Path.Combine(dir, "imagenet")}", "--warmup", "1", "--batch-size=8",
            "--lr=1e-3", "--wd=0.1", "--epochs=2", "--workers=1", "--model", Path.Combine(dir, "spec.yaml"), "--save-frequency", "1", "--zeroshot-frequency", "2",
            "--report-to", "tensorboard", "--output", output, "--threads", "1");
        Assert.True(code == 0, stderr);

        // Zero-shot every 2nd epoch, top-1 and top-5; retrieval every epoch; a checkpoint kept per epoch.
        var metrics = File.ReadAllLines(Path.Combine(output, "metrics.jsonl"));
        Assert.Equal(2, metrics.Length);
        Assert.DoesNotContain("zero_shot_accuracy", metrics[0]);
        Assert.Contains("\"zero_shot_accuracy\"", metrics[1]);
        Assert.Contains("\"zero_shot_top5_accuracy\"", metrics[1]);
        Assert.Contains("\"image_to_text_recall@1\"", metrics[0]);
        Assert.True(File.Exists(Path.Combine(output, "checkpoints", "epoch_1.safetensors")));
        Assert.True(File.Exists(Path.Combine(output, "checkpoints", "epoch_2.safetensors")));
        Assert.Contains("zero_shot_top5_accuracy", stdout);

        // TensorBoard: TFRecord framing with valid masked CRC32C, a file_version event, then the scalars.
        var events = Directory.GetFiles(Path.Combine(output, "tensorboard"), "events.out.tfevents.*");
        var file = Assert.Single(events);
        var records = ReadRecords(File.ReadAllBytes(file));
        Assert.Equal("brain.Event:2", FileVersion(records[0]));
        var scalars = records.SelectMany(Scalars).ToList();
        var tags = scalars.Select(s => s.Tag).ToHashSet();
        foreach (var tag in new[] { "train/loss", "train/lr", "train/epoch_loss", "train/images_per_second", "val/zero_shot_accuracy", "val/zero_shot_top5_accuracy", "val/image_to_text_recall@1" })
            Assert.Contains(tag, tags);
        Assert.Equal(4, scalars.Count(s => s.Tag == "train/loss")); // 16 images / batch 8 = 2 steps per epoch, 2 epochs
        Assert.Equal([1L, 2, 3, 4], scalars.Where(s => s.Tag == "train/loss").Select(s => s.Step));
        Assert.All(scalars.Where(s => s.Tag == "train/lr"), s => Assert.True(s.Value is > 0 and <= 1e-3f));
        var top5 = scalars.Single(s => s.Tag == "val/zero_shot_top5_accuracy");
        Assert.Equal(4, top5.Step);
        Assert.InRange(top5.Value, 0, 1);
    }

    static void Png(string path, SKColor color)
    {
        using var bmp = new SKBitmap(20, 24);
        bmp.Erase(color);
        using var data = bmp.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, data.ToArray());
    }

    /// <summary>TFRecord: uint64 length, masked CRC32C of the length, the data, masked CRC32C of the data (little-endian).</summary>
    static List<byte[]> ReadRecords(byte[] file)
    {
        var records = new List<byte[]>();
        int at = 0;
        while (at < file.Length)
        {
            var lengthBytes = file.AsSpan(at, 8);
            long length = BinaryPrimitives.ReadInt64LittleEndian(lengthBytes);
            Assert.Equal(MaskedCrc(lengthBytes), BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(at + 8, 4)));
            var data = file.AsSpan(at + 12, (int)length).ToArray();
            Assert.Equal(MaskedCrc(data), BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(at + 12 + (int)length, 4)));
            records.Add(data);
            at += 12 + (int)length + 4;
        }
        return records;
    }

    static uint MaskedCrc(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (var b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1; // CRC-32C (Castagnoli), reflected
        }
        crc = ~crc;
        return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
    }

    /// <summary>The fields of a protobuf message: (field number, wire type, varint or fixed value, bytes of a length-delimited field).</summary>
    static IEnumerable<(int Field, int Wire, ulong Number, byte[] Bytes)> Fields(byte[] message)
    {
        int at = 0;
        while (at < message.Length)
        {
            ulong key = Varint(message, ref at);
            int field = (int)(key >> 3), wire = (int)(key & 7);
            switch (wire)
            {
                case 0: yield return (field, wire, Varint(message, ref at), []); break;
                case 1: yield return (field, wire, BinaryPrimitives.ReadUInt64LittleEndian(message.AsSpan(at, 8)), []); at += 8; break;
                case 5: yield return (field, wire, BinaryPrimitives.ReadUInt32LittleEndian(message.AsSpan(at, 4)), []); at += 4; break;
                case 2:
                    int n = (int)Varint(message, ref at);
                    yield return (field, wire, 0, message.AsSpan(at, n).ToArray());
                    at += n;
                    break;
                default: throw new InvalidDataException($"wire type {wire}");
            }
        }
    }

    static ulong Varint(byte[] b, ref int at)
    {
        ulong v = 0;
        for (int shift = 0; ; shift += 7)
        {
            byte x = b[at++];
            v |= (ulong)(x & 0x7F) << shift;
            if ((x & 0x80) == 0) return v;
        }
    }

    /// <summary>Event.file_version (field 3).</summary>
    static string? FileVersion(byte[] evnt) => Fields(evnt).Where(f => f.Field == 3).Select(f => Encoding.UTF8.GetString(f.Bytes)).FirstOrDefault();

    /// <summary>Event.step (2) and Event.summary (5) → Summary.value (1) → Value.tag (1), Value.simple_value (2).</summary>
    static IEnumerable<(string Tag, float Value, long Step)> Scalars(byte[] evnt)
    {
        var fields = Fields(evnt).ToList();
        long step = (long)(fields.FirstOrDefault(f => f.Field == 2).Number);
        foreach (var summary in fields.Where(f => f.Field == 5))
            foreach (var value in Fields(summary.Bytes).Where(f => f.Field == 1))
            {
                var v = Fields(value.Bytes).ToList();
                var tag = Encoding.UTF8.GetString(v.First(f => f.Field == 1).Bytes);
                var simple = BitConverter.UInt32BitsToSingle((uint)v.First(f => f.Field == 2 && f.Wire == 5).Number);
                yield return (tag, simple, step);
            }
    }
}
