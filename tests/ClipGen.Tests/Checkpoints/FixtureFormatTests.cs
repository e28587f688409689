using ClipGen.Checkpoints;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ClipGen.Tests.Checkpoints;

/// <summary>The real reference checkpoints read the same in every format they come in.</summary>
public class FixtureFormatTests
{
    static string Ref(params string[] parts) => Fixtures.Path_(["reference", .. parts]);

    static Dictionary<string, byte[]> ReadAllFloat32(ICheckpointSource source)
    {
        var result = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var entry in source.Entries)
        {
            using var t = entry.ToTensor(ScalarType.Float32);
            Assert.Equal(entry.Shape, t.shape);
            result.Add(entry.Name, t.bytes.ToArray());
        }
        return result;
    }

    static void AssertSameTensors(Dictionary<string, byte[]> expected, Dictionary<string, byte[]> actual, string what)
    {
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), actual.Keys.Order(StringComparer.Ordinal));
        foreach (var (key, bytes) in expected)
            Assert.True(bytes.AsSpan().SequenceEqual(actual[key]), $"{what}: '{key}' differs");
    }

    [Theory]
    [InlineData("tiny-vit")]
    [InlineData("tiny-rn")]
    public void OpenAI_safetensors_state_dict_and_torchscript_agree_bit_for_bit(string model)
    {
        using var safetensors = CheckpointReader.Open(Ref("openai", model, "model.safetensors"));
        using var stateDict = CheckpointReader.Open(Ref("openai", model, "openai_state_dict.pt"));
        using var jit = CheckpointReader.Open(Ref("openai", model, "openai_jit.pt"));

        Assert.Equal("safetensors", safetensors.Format);
        Assert.Equal("torch-zip", stateDict.Format);
        Assert.Equal("torchscript", jit.Format);
        Assert.Equal("openai", jit.Metadata["provenance"]);
        Assert.Equal(model, safetensors.Metadata["config"]);

        var reference = ReadAllFloat32(safetensors);
        Assert.Contains("text_projection", reference.Keys);
        AssertSameTensors(reference, ReadAllFloat32(stateDict), "state dict");
        AssertSameTensors(reference, ReadAllFloat32(jit), "torchscript");
        // File order is kept: the state dict and the safetensors list the same keys, and the first is OpenAI's first.
        Assert.Equal("positional_embedding", stateDict.Entries[0].Name);
    }

    [Fact]
    public void OpenAI_ResNet_buffers_keep_their_dtypes()
    {
        using var stateDict = CheckpointReader.Open(Ref("openai", "tiny-rn", "openai_state_dict.pt"));
        var counter = stateDict.Entries.Single(e => e.Name == "visual.bn1.num_batches_tracked");
        Assert.Equal(TensorDType.I64, counter.DType);
        Assert.Empty(counter.Shape);
        using var t = counter.ToTensor();
        Assert.Equal(1L, t.item<long>());
    }

    [Theory]
    [InlineData("tiny-vit")]
    [InlineData("tiny-rn")]
    public void Our_TorchScript_reading_equals_libtorch_jit_load(string model)
    {
        var path = Ref("openai", model, "openai_jit.pt");
        using var ours = CheckpointReader.Open(path);
        using var module = torch.jit.load(path);
        var theirs = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var (name, p) in module.named_parameters()) theirs[name] = p.contiguous().bytes.ToArray();
        foreach (var (name, b) in module.named_buffers()) theirs[name] = b.contiguous().bytes.ToArray();
        var mine = ours.Entries.ToDictionary(e => e.Name, e => { using var t = e.ToTensor(); return t.bytes.ToArray(); });
        AssertSameTensors(theirs, mine, "jit.load");
    }

    [Fact]
    public void Open_clip_bin_and_safetensors_agree_bit_for_bit()
    {
        using var bin = CheckpointReader.Open(Ref("open_clip", "tiny-vit-gelu", "open_clip_pytorch_model.bin"));
        using var safetensors = CheckpointReader.Open(Ref("open_clip", "tiny-vit-gelu", "open_clip_model.safetensors"));
        Assert.Equal("torch-zip", bin.Format);
        Assert.False(bin.Metadata.ContainsKey("provenance"));
        AssertSameTensors(ReadAllFloat32(safetensors), ReadAllFloat32(bin), "open_clip .bin");
    }

    [Fact]
    public void Hugging_Face_safetensors_lists_its_names()
    {
        using var hf = CheckpointReader.Open(Ref("hf", "tiny-vit", "model.safetensors"));
        Assert.Equal("safetensors", hf.Format);
        Assert.Contains(hf.Entries, e => e.Name.StartsWith("vision_model.", StringComparison.Ordinal));
        Assert.Contains(hf.Entries, e => e.Name == "logit_scale");
    }

    static float[] Floats(Tensor t)
    {
        using var f = t.to_type(ScalarType.Float32).contiguous();
        return f.data<float>().ToArray();
    }

    [Fact]
    public void CopyInto_fills_matching_targets_and_converts_dtypes()
    {
        using var source = CheckpointReader.Open(Ref("openai", "tiny-vit", "openai_state_dict.pt"));
        var entry = source.Entries.Single(e => e.Name == "visual.conv1.weight");
        using var expected = entry.ToTensor();

        using var same = zeros(entry.Shape, ScalarType.Float32);
        entry.CopyInto(same);
        Assert.Equal(Floats(expected), Floats(same));

        using var wider = zeros(entry.Shape, ScalarType.Float64);
        entry.CopyInto(wider);
        Assert.Equal(Floats(expected), Floats(wider));

        using var parameter = new TorchSharp.Modules.Parameter(zeros(entry.Shape, ScalarType.Float16));
        entry.CopyInto(parameter);
        Assert.True(parameter.to_type(ScalarType.Float32).allclose(expected, rtol: 1e-3, atol: 1e-3));

        using var strided = zeros([entry.Shape[1], entry.Shape[0], entry.Shape[2], entry.Shape[3]], ScalarType.Float32).transpose(0, 1);
        entry.CopyInto(strided);
        Assert.Equal(Floats(expected), Floats(strided));

        using var wrong = zeros([3, 3], ScalarType.Float32);
        var error = Assert.Throws<ClipGenException>(() => entry.CopyInto(wrong));
        Assert.Contains("visual.conv1.weight", error.Message);
        Assert.Contains("openai_state_dict.pt", error.Message);
    }
}
