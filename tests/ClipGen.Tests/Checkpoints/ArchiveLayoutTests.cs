using ClipGen.Checkpoints;
using Xunit;
using static ClipGen.Tests.Checkpoints.CheckpointFiles;
using static TorchSharp.torch;

namespace ClipGen.Tests.Checkpoints;

/// <summary>Layouts that real checkpoints use: wrappers, <c>module.</c> prefixes, strided and shared storages, half storages on cuda:0, shards.</summary>
public class ArchiveLayoutTests
{
    [Fact]
    public void Open_clip_training_wrapper_is_unwrapped_and_module_prefix_stripped()
    {
        using var temp = new TempFolder();
        var pickle = new PickleWriter().EmptyDict().Mark()
            .Str("epoch").Int(32)
            .Str("name").Str("ViT-B-32 run")
            .Str("state_dict").EmptyDict().Mark()
                .Str("module.a").Tensor("FloatStorage", "0", 2, 0, [2], [1])
                .Str("module.b.weight").Tensor("FloatStorage", "1", 1, 0, [], [])
            .SetItems()
            .SetItems().Stop().ToArray();
        var path = temp.File("epoch_32.pt");
        Zip(path, ("epoch_32/data.pkl", pickle), ("epoch_32/data/0", Floats(1, 2)), ("epoch_32/data/1", Floats(5)));

        using var source = CheckpointReader.Open(path);
        Assert.Equal("torch-zip", source.Format);
        Assert.Equal(["a", "b.weight"], source.Entries.Select(e => e.Name));
        Assert.Equal("32", source.Metadata["epoch"]);
        Assert.Equal("ViT-B-32 run", source.Metadata["name"]);
        using var b = source.Entries[1].ToTensor();
        Assert.Empty(b.shape);
        Assert.Equal(5f, b.item<float>());
    }

    [Fact]
    public void Module_prefix_is_kept_unless_every_key_has_it()
    {
        using var temp = new TempFolder();
        var pickle = new PickleWriter().EmptyDict().Mark()
            .Str("module.a").Tensor("FloatStorage", "0", 2, 0, [2], [1])
            .Str("b").Tensor("FloatStorage", "0", 2, 1, [1], [1])
            .SetItems().Stop().ToArray();
        var path = temp.File("mixed.pt");
        Zip(path, ("archive/data.pkl", pickle), ("archive/data/0", Floats(1, 2)));
        using var source = CheckpointReader.Open(path);
        Assert.Equal(["module.a", "b"], source.Entries.Select(e => e.Name));
    }

    [Fact]
    public void Storage_offsets_strides_and_shared_storages_are_honoured()
    {
        using var temp = new TempFolder();
        // One storage of 8 floats 0..7. "t" is the transpose of the 2x3 block starting at element 2; "s" is elements 5..6.
        var pickle = new PickleWriter().EmptyDict().Mark()
            .Str("t").Tensor("FloatStorage", "0", 8, 2, [3, 2], [1, 3])
            .Str("s").Tensor("FloatStorage", "0", 8, 5, [2], [1])
            .SetItems().Stop().ToArray();
        var path = temp.File("views.pt");
        Zip(path, ("archive/data.pkl", pickle), ("archive/data/0", Floats(0, 1, 2, 3, 4, 5, 6, 7)));

        using var source = CheckpointReader.Open(path);
        using var t = source.Entries[0].ToTensor();
        Assert.Equal([3L, 2L], t.shape);
        Assert.Equal([2f, 5f, 3f, 6f, 4f, 7f], t.data<float>().ToArray());
        using var s = source.Entries[1].ToTensor();
        Assert.Equal([5f, 6f], s.data<float>().ToArray());

        using var target = zeros([3, 2], ScalarType.Float64);
        source.Entries[0].CopyInto(target);
        Assert.Equal([2.0, 5.0, 3.0, 6.0, 4.0, 7.0], target.data<double>().ToArray());
    }

    [Fact]
    public void Half_storages_saved_on_cuda_are_read_on_the_cpu()
    {
        using var temp = new TempFolder();
        var pickle = new PickleWriter().EmptyDict().Mark()
            .Str("w").Tensor("HalfStorage", "0", 3, 0, [3], [1], location: "cuda:0")
            .SetItems().Stop().ToArray();
        var data = new byte[6];
        Half[] values = [(Half)1.5f, (Half)(-2f), (Half)0.099975586f];
        for (int i = 0; i < 3; i++) BitConverter.TryWriteBytes(data.AsSpan(i * 2), values[i]);
        var path = temp.File("half.pt");
        Zip(path, ("archive/data.pkl", pickle), ("archive/data/0", data));

        using var source = CheckpointReader.Open(path);
        Assert.Equal(TensorDType.F16, source.Entries[0].DType);
        using var t = source.Entries[0].ToTensor(ScalarType.Float32);
        Assert.Equal(values.Select(v => (float)v).ToArray(), t.data<float>().ToArray());
    }

    static void WriteShard(string path, string name, params float[] values)
        => File.WriteAllBytes(path, SafeTensors(
            $$$"""{"{{{name}}}":{"dtype":"F32","shape":[{{{values.Length}}}],"data_offsets":[0,{{{values.Length * 4}}}]}}""", Floats(values)));

    [Fact]
    public void Sharded_safetensors_are_read_through_the_index()
    {
        using var temp = new TempFolder();
        WriteShard(temp.File("model-00001-of-00002.safetensors"), "a", 1, 2);
        WriteShard(temp.File("model-00002-of-00002.safetensors"), "b", 3);
        var index = temp.File("model.safetensors.index.json");
        File.WriteAllText(index, """
            {"metadata": {"total_size": 12},
             "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
            """);

        using var source = CheckpointReader.OpenShardedSafetensors(index);
        Assert.Equal("safetensors-sharded", source.Format);
        Assert.Equal("12", source.Metadata["total_size"]);
        Assert.Equal(["a", "b"], source.Entries.Select(e => e.Name));
        using var b = source.Entries[1].ToTensor();
        Assert.Equal([3f], b.data<float>().ToArray());
    }

    [Fact]
    public void Sharded_index_with_a_missing_shard_names_it()
    {
        using var temp = new TempFolder();
        WriteShard(temp.File("model-00001-of-00002.safetensors"), "a", 1, 2);
        var index = temp.File("model.safetensors.index.json");
        File.WriteAllText(index, """{"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}""");

        var error = Assert.Throws<ClipGenException>(() => CheckpointReader.OpenShardedSafetensors(index));
        Assert.Contains("'model-00002-of-00002.safetensors' is missing", error.Message);
        Assert.Contains(index, error.Message);
        Assert.DoesNotContain('\n', error.Message);

        File.WriteAllText(index, """{"weight_map": {"a": "../elsewhere.safetensors"}}""");
        error = Assert.Throws<ClipGenException>(() => CheckpointReader.OpenShardedSafetensors(index));
        Assert.Contains("must be a file name", error.Message);

        File.WriteAllText(index, """{"weight_map": {"z": "model-00001-of-00002.safetensors"}}""");
        error = Assert.Throws<ClipGenException>(() => CheckpointReader.OpenShardedSafetensors(index));
        Assert.Contains("'z' is not in shard", error.Message);
    }
}
