using ClipGen.IO;
using Xunit;
using static ClipGen.Tests.Checkpoints.CheckpointFiles;
using static ClipGen.Tests.Checkpoints.LoaderParityTests;
using static TorchSharp.torch;

namespace ClipGen.Tests.Checkpoints;

/// <summary>Hostile and damaged weights through <c>clipgen infer</c>: one line, exit code 2, nothing runs, no crash.</summary>
public class HostileCliTests
{
    static string Refused(string weights, params string[] fragments)
    {
        using var temp = new TempFolder();
        var output = temp.File("out.safetensors");
        var (code, stdout, err) = TestUtil.Cli("infer", "--model", "tiny-vit", "--weights", weights,
            "--inputs", Ref("openai", "tiny-vit", "inputs.safetensors"), "--output", output);
        Assert.True(code == 2, $"exit {code}: {err}");
        Assert.Equal("", stdout);
        var line = Assert.Single(err.TrimEnd().Split('\n'));
        Assert.StartsWith("error: ", line);
        foreach (var f in fragments) Assert.Contains(f, line);
        Assert.False(File.Exists(output));
        return line;
    }

    [Fact]
    public void Truncated_safetensors()
    {
        using var temp = new TempFolder();
        var bytes = File.ReadAllBytes(Ref("openai", "tiny-vit", "model.safetensors"));
        File.WriteAllBytes(temp.File("cut.safetensors"), bytes[..(bytes.Length - 1000)]);
        Refused(temp.File("cut.safetensors"), "truncated");
    }

    [Fact]
    public void Header_claiming_more_bytes_than_the_file()
    {
        using var temp = new TempFolder();
        File.WriteAllBytes(temp.File("h.safetensors"), SafeTensors("{}", new byte[16], claimedHeaderLength: 1 << 30));
        Refused(temp.File("h.safetensors"), "header claims");
    }

    [Fact]
    public void Wrong_dtype_string()
    {
        using var temp = new TempFolder();
        File.WriteAllBytes(temp.File("d.safetensors"), SafeTensors("""{"logit_scale":{"dtype":"float32","shape":[],"data_offsets":[0,4]}}""", Floats(1)));
        Refused(temp.File("d.safetensors"), "'logit_scale'", "'float32'");
    }

    [Fact]
    public void Overlapping_offsets()
    {
        using var temp = new TempFolder();
        File.WriteAllBytes(temp.File("o.safetensors"), SafeTensors(
            """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", Floats(1, 2, 3)));
        Refused(temp.File("o.safetensors"), "overlaps");
    }

    [Fact]
    public void A_zip_that_is_not_a_checkpoint()
    {
        using var temp = new TempFolder();
        Zip(temp.File("photos.pt"), ("photos/cat.jpg", [0xFF, 0xD8, 0xFF]));
        Refused(temp.File("photos.pt"), "not a PyTorch checkpoint");
    }

    [Fact]
    public void A_pickle_that_calls_os_system_runs_nothing()
    {
        using var temp = new TempFolder();
        var marker = temp.File("pwned");
        var pickle = new PickleWriter().Global("os", "system").Str($"touch {marker}").Op(0x85).Reduce().Stop();
        Zip(temp.File("evil.pt"), ("evil/data.pkl", pickle.ToArray()), ("evil/version", "3\n"u8.ToArray()));
        Refused(temp.File("evil.pt"), "refusing to unpickle global 'os.system'");
        Assert.False(File.Exists(marker));
    }

    [Fact]
    public void A_state_dict_of_another_architecture()
    {
        Refused(Ref("openai", "tiny-rn", "openai_state_dict.pt"), "do not fit spec 'tiny-vit'", "missing key(s)", "unexpected key(s)", "look like tiny-rn");
    }

    [Fact]
    public void A_missing_shard()
    {
        using var temp = new TempFolder();
        File.Copy(Ref("openai", "tiny-vit", "model.safetensors"), temp.File("model-00001-of-00002.safetensors"));
        File.WriteAllText(temp.File("model.safetensors.index.json"),
            """{"weight_map": {"logit_scale": "model-00001-of-00002.safetensors", "visual.proj": "model-00002-of-00002.safetensors"}}""");
        Refused(temp.Path, "shard 'model-00002-of-00002.safetensors' is missing");
    }

    [Fact]
    public void Empty_folders_and_missing_files()
    {
        using var temp = new TempFolder();
        Refused(temp.Path, "no weights found");
        Refused(temp.File("nothing-here.safetensors"), "not found");
    }

    [Theory]
    [InlineData("tiny-vit")]
    [InlineData("tiny-rn")]
    public void An_fp16_checkpoint_loads_within_fp16_rounding(string model)
    {
        using var temp = new TempFolder();
        var half = temp.File("half.safetensors");
        WriteConverted(Ref("openai", model, "model.safetensors"), half, ScalarType.Float16);
        var err = InferAndCompare(model, half, "openai/" + model, rel: 2e-2);
        Assert.DoesNotContain("error", err);
    }
}
