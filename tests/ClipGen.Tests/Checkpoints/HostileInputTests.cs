using ClipGen.Checkpoints;
using Xunit;
using static ClipGen.Tests.Checkpoints.CheckpointFiles;
using static TorchSharp.torch;

namespace ClipGen.Tests.Checkpoints;

/// <summary>Damaged, hostile or unsupported files fail with one line that names the file (and the tensor), and nothing runs.</summary>
public class HostileInputTests
{
    static ClipGenException Refused(string path, params string[] fragments)
    {
        var error = Assert.Throws<ClipGenException>(() => { using var _ = CheckpointReader.Open(path); });
        AssertOneLine(error, path, fragments);
        return error;
    }

    static void AssertOneLine(ClipGenException error, string path, params string[] fragments)
    {
        Assert.DoesNotContain('\n', error.Message);
        Assert.Contains(path, error.Message);
        foreach (var f in fragments) Assert.Contains(f, error.Message);
    }

    [Fact]
    public void Truncated_safetensors_is_refused_naming_a_tensor()
    {
        using var temp = new TempFolder();
        var original = File.ReadAllBytes(Fixtures.Path_("reference", "openai", "tiny-vit", "model.safetensors"));
        var cut = temp.File("cut.safetensors");
        File.WriteAllBytes(cut, original[..(original.Length / 2)]);
        Refused(cut, "tensor '", "beyond", "truncated");

        var tiny = temp.File("tiny.safetensors");
        File.WriteAllBytes(tiny, original[..5]);
        Refused(tiny, "truncated");
    }

    [Fact]
    public void Header_longer_than_the_file_is_refused()
    {
        using var temp = new TempFolder();
        var path = temp.File("long-header.safetensors");
        File.WriteAllBytes(path, SafeTensors("{}", [], claimedHeaderLength: 1_000_000));
        Refused(path, "header claims 1000000 bytes");
    }

    [Fact]
    public void Unknown_dtype_is_refused_naming_the_tensor()
    {
        using var temp = new TempFolder();
        var path = temp.File("dtype.safetensors");
        File.WriteAllBytes(path, SafeTensors("""{"w":{"dtype":"F99","shape":[1],"data_offsets":[0,4]}}""", Floats(1)));
        Refused(path, "'w'", "'F99'");
    }

    [Fact]
    public void Overlapping_offsets_are_refused()
    {
        using var temp = new TempFolder();
        var path = temp.File("overlap.safetensors");
        File.WriteAllBytes(path, SafeTensors(
            """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""",
            Floats(1, 2, 3)));
        Refused(path, "overlaps", "'a'", "'b'");
    }

    [Theory]
    [InlineData("""{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", "'a'", "needs 12 bytes")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,4]}}""", "'a'", "ordered pair")]
    [InlineData("""{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}""", "'a'", "non-negative")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2]}}""", "'a'", "data_offsets")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", "'a'", "twice")]
    [InlineData("""{"a": [1, 2""", "not valid JSON")]
    [InlineData("""["a"]""", "not a recognised checkpoint")]
    public void Malformed_headers_are_refused(string header, params string[] fragments)
    {
        using var temp = new TempFolder();
        var path = temp.File("bad.safetensors");
        File.WriteAllBytes(path, SafeTensors(header, Floats(1, 2)));
        Refused(path, fragments);
    }

    [Fact]
    public void A_zip_that_is_not_a_checkpoint_is_refused()
    {
        using var temp = new TempFolder();
        var path = temp.File("notes.zip");
        Zip(path, ("notes/readme.txt", "hello"u8.ToArray()));
        Refused(path, "not a PyTorch checkpoint");
    }

    [Fact]
    public void Legacy_torch_save_and_unknown_files_are_refused()
    {
        using var temp = new TempFolder();
        var legacy = temp.File("legacy.pt");
        File.WriteAllBytes(legacy, [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e]);
        Refused(legacy, "legacy", "re-save");

        var text = temp.File("model.txt");
        File.WriteAllText(text, "this is not a checkpoint at all");
        Refused(text, "not a recognised checkpoint");

        var error = Assert.Throws<ClipGenException>(() => CheckpointReader.Open(temp.Path));
        AssertOneLine(error, temp.Path, "folder");
        error = Assert.Throws<ClipGenException>(() => CheckpointReader.Open(temp.File("missing.safetensors")));
        AssertOneLine(error, temp.File("missing.safetensors"), "not found");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_pickle_calling_os_system_is_refused_and_nothing_runs(bool stackGlobal)
    {
        using var temp = new TempFolder();
        var marker = temp.File("pwned");
        var pickle = new PickleWriter();
        if (stackGlobal) pickle.StackGlobal("posix", "system"); else pickle.Global("posix", "system");
        pickle.Str($"touch {marker}").Op(0x85).Reduce().Stop(); // TUPLE1, REDUCE, STOP
        var path = temp.File("evil.pt");
        Zip(path, ("archive/data.pkl", pickle.ToArray()), ("archive/version", "3\n"u8.ToArray()));

        Refused(path, "refusing to unpickle global 'posix.system'", "may only contain tensors");
        Assert.False(File.Exists(marker));
    }

    [Theory]
    [InlineData("builtins", "eval")]
    [InlineData("os", "system")]
    [InlineData("subprocess", "Popen")]
    [InlineData("torch", "load")]
    [InlineData("__torch__.clip.model", "CLIP")] // TorchScript classes only inside a TorchScript archive
    public void Globals_outside_the_allow_list_are_refused(string module, string name)
    {
        using var temp = new TempFolder();
        var pickle = new PickleWriter().Global(module, name).EmptyTuple().Reduce().Stop();
        var path = temp.File("global.pt");
        Zip(path, ("m/data.pkl", pickle.ToArray()));
        Refused(path, $"refusing to unpickle global '{module}.{name}'");
    }

    [Fact]
    public void A_whole_pickled_model_is_refused_at_its_class()
    {
        using var temp = new TempFolder();
        var pickle = new PickleWriter().Global("clip.model", "CLIP").EmptyTuple().Op(0x81).Stop(); // NEWOBJ
        var path = temp.File("model.pt");
        Zip(path, ("model/data.pkl", pickle.ToArray()));
        Refused(path, "'clip.model.CLIP'");
    }

    [Fact]
    public void Storage_that_is_missing_or_short_is_refused_naming_the_tensor()
    {
        using var temp = new TempFolder();
        var pickle = new PickleWriter().EmptyDict().Mark()
            .Str("w").Tensor("FloatStorage", "0", 4, 0, [4], [1])
            .SetItems().Stop().ToArray();
        var missing = temp.File("missing.pt");
        Zip(missing, ("archive/data.pkl", pickle));
        Refused(missing, "'w'", "data/0");

        var shortStorage = temp.File("short.pt");
        Zip(shortStorage, ("archive/data.pkl", pickle), ("archive/data/0", Floats(1, 2)));
        Refused(shortStorage, "'w'", "truncated");

        var pastEnd = new PickleWriter().EmptyDict().Mark()
            .Str("w").Tensor("FloatStorage", "0", 4, 2, [4], [1])
            .SetItems().Stop().ToArray();
        var view = temp.File("view.pt");
        Zip(view, ("archive/data.pkl", pastEnd), ("archive/data/0", Floats(1, 2, 3, 4)));
        Refused(view, "'w'", "past the end");
    }

    [Fact]
    public void A_TorchScript_module_that_contains_itself_is_refused()
    {
        using var temp = new TempFolder();
        var pickle = new PickleWriter().Global("__torch__.m", "A").EmptyTuple().Op(0x81).Op((byte)'q', 0) // NEWOBJ, BINPUT 0
            .EmptyDict().Mark().Str("self").Op((byte)'h', 0).SetItems().Op((byte)'b').Stop().ToArray(); // BINGET 0, BUILD
        var path = temp.File("cycle.pt");
        Zip(path, ("cycle/data.pkl", pickle), ("cycle/constants.pkl", new PickleWriter().EmptyTuple().Stop().ToArray()));
        Refused(path, "cycle", "'self'");
    }

    [Fact]
    public void Garbage_pickles_fail_cleanly()
    {
        using var temp = new TempFolder();
        var rng = new Random(7);
        for (int i = 0; i < 200; i++)
        {
            var bytes = new byte[rng.Next(1, 64)];
            rng.NextBytes(bytes);
            var path = temp.File($"garbage{i}.pt");
            Zip(path, ("a/data.pkl", [0x80, 0x02, .. bytes]));
            var error = Assert.Throws<ClipGenException>(() => { using var _ = CheckpointReader.Open(path); });
            Assert.DoesNotContain('\n', error.Message);
        }
    }

    [Fact]
    public void Fp16_safetensors_loads_and_converts_exactly()
    {
        using var temp = new TempFolder();
        Half[] values = [(Half)0.5f, (Half)(-1.25f), (Half)3.140625f, Half.MaxValue, Half.Epsilon, (Half)(-0.0f)];
        var data = new byte[values.Length * 2];
        for (int i = 0; i < values.Length; i++) BitConverter.TryWriteBytes(data.AsSpan(i * 2), values[i]);
        var path = temp.File("half.safetensors");
        File.WriteAllBytes(path, SafeTensors("""{"__metadata__":{"format":"pt"},"h":{"dtype":"F16","shape":[2,3],"data_offsets":[0,12]}}""", data));

        using var source = CheckpointReader.Open(path);
        var entry = Assert.Single(source.Entries);
        Assert.Equal(TensorDType.F16, entry.DType);
        Assert.Equal([2L, 3L], entry.Shape);
        Assert.Equal("pt", source.Metadata["format"]);

        using var half = entry.ToTensor();
        Assert.Equal(ScalarType.Float16, half.dtype);
        using var single = entry.ToTensor(ScalarType.Float32);
        Assert.Equal(values.Select(v => (float)v).ToArray(), single.data<float>().ToArray());

        using var target = zeros([2, 3], ScalarType.Float32);
        entry.CopyInto(target);
        Assert.Equal(values.Select(v => (float)v).ToArray(), target.data<float>().ToArray());
    }
}
