using ClipGen.Checkpoints;
using Xunit;
using static ClipGen.Tests.Checkpoints.CheckpointFiles;
using static TorchSharp.torch;
using ClipGen.Tests.Checkpoints;

namespace ClipGen.Tests.Hardening;

/// <summary>Defects 3–6, 14 (checkpoint parts) and 17 of issue 12: checkpoint readers bounded by the file's real size.</summary>
public class CheckpointLimitTests
{
    static ClipGenException Refused(string path, params string[] fragments)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        var error = Assert.Throws<ClipGenException>(() =>
        {
            using var source = CheckpointReader.Open(path);
            foreach (var e in source.Entries) { using var t = e.ToTensor(); }
        });
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < 512L << 20, $"allocated {allocated:N0} bytes");
        Assert.DoesNotContain('\n', error.Message);
        Assert.Contains(path, error.Message);
        foreach (var f in fragments) Assert.Contains(f, error.Message);
        return error;
    }

    [Fact]
    public void A_deflated_pickle_bomb_is_refused_by_its_compression_ratio()
    {
        using var temp = new TempFolder();
        var path = temp.File("bomb.pt");
        HostileCorpus.PickleAmplification(path, 20_000_000, deflate: true);
        Assert.True(new FileInfo(path).Length < 100_000);
        Refused(path, "'archive/data.pkl'", "expands from", "more than 100 times");
    }

    [Fact]
    public void A_stored_pickle_that_creates_an_object_per_byte_is_refused_by_its_object_budget()
    {
        using var temp = new TempFolder();
        var path = temp.File("lists.pt");
        HostileCorpus.PickleAmplification(path, 2_000_000, deflate: false);
        Refused(path, "creates more than 1,065,537 objects from 2,000,003 bytes");
    }

    [Fact]
    public void Real_pickles_stay_well_inside_the_object_budget()
    {
        foreach (var (model, file) in new[] { ("tiny-vit", "openai_jit.pt"), ("tiny-vit", "openai_state_dict.pt"), ("tiny-rn", "openai_state_dict.pt"), ("tiny-rn", "openai_jit.pt") })
        {
            var path = Fixtures.Path_("reference", "openai", model, file);
            using var zip = System.IO.Compression.ZipFile.OpenRead(path);
            var entry = zip.Entries.First(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal));
            var bytes = new byte[entry.Length];
            using (var s = entry.Open()) s.ReadExactly(bytes);
            RestrictedUnpickler.Load(bytes, path, file.Contains("jit"), out long objects);
            // At most half the rate the budget allows (one object per 2 bytes), so real files never come near it.
            Assert.True(objects * 2 * CheckpointLimits.Default.PickleBytesPerObject <= bytes.Length, $"{file}: {objects} objects from {bytes.Length} bytes");
        }
    }

    [Fact]
    public void A_TorchScript_DAG_is_walked_once_per_module()
    {
        using var temp = new TempFolder();
        var path = temp.File("dag.pt");
        HostileCorpus.TorchScriptDag(path, nodes: 60); // 2^60 paths
        using var source = CheckpointReader.Open(path);
        var entry = Assert.Single(source.Entries);
        Assert.Equal(string.Concat(Enumerable.Repeat("a.", 60)) + "w", entry.Name);
        using var t = entry.ToTensor();
        Assert.Equal(1f, t.item<float>());
    }

    [Fact]
    public void A_code_file_shared_by_many_classes_is_read_once()
    {
        using var temp = new TempFolder();
        var path = temp.File("shared-code.pt");
        HostileCorpus.SharedCodeFile(path, classes: 300, codeBytes: 2 << 20);
        long before = GC.GetAllocatedBytesForCurrentThread();
        using var source = CheckpointReader.Open(path);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(300, source.Entries.Count);
        Assert.Equal("c7.w", source.Entries[7].Name);
        // One read of the 2 MB file (bytes, text and lines: ~10 MB); 300 reads would allocate ~3 GB.
        Assert.True(allocated < 64L << 20, $"allocated {allocated:N0} bytes");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Strided_views_of_one_storage_read_it_once_and_gather_exactly(bool deflate)
    {
        using var temp = new TempFolder();
        var path = temp.File("views.pt");
        const int views = 62, floats = 1 << 20;
        HostileCorpus.StridedViews(path, views, floats, deflate);
        using var source = CheckpointReader.Open(path);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < views; i++)
        {
            using var t = source.Entries[i].ToTensor();
            long o = HostileCorpus.StridedViewOffset(i, views, floats);
            // size [2,2], stride [1,2]: row r, column c reads element o + r + 2c.
            Assert.Equal(new float[] { o, o + 2, o + 1, o + 3 }, t.data<float>().ToArray());
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        // One span of the 4 MB storage in all (62 whole-storage reads would be 260 MB).
        Assert.True(allocated < 3 * 4L * floats, $"allocated {allocated:N0} bytes");
    }

    [Fact]
    public void A_flipped_byte_in_a_stored_tensor_fails_the_CRC()
    {
        using var temp = new TempFolder();
        var path = temp.File("flipped.pt");
        File.Copy(Fixtures.Path_("reference", "openai", "tiny-vit", "openai_state_dict.pt"), path);
        using (var zip = System.IO.Compression.ZipFile.OpenRead(path))
        {
            var biggest = zip.Entries.Where(e => e.FullName.Contains("/data/")).MaxBy(e => e.Length)!;
            HostileCorpus.FlipStoredByte(path, biggest.FullName, 10);
        }
        Refused(path, "fails its CRC-32 check");
    }

    [Fact]
    public void An_entry_shorter_than_declared_names_the_file_and_entry()
    {
        using var temp = new TempFolder();
        var path = temp.File("short.pt");
        HostileCorpus.ShortEntry(path);
        Refused(path, "'archive/data.pkl'");
    }

    [Theory]
    [InlineData("[\"0\", \"8\"]")]
    [InlineData("[null, null]")]
    [InlineData("[0, \"8\"]")]
    [InlineData("[0.5, 8]")]
    [InlineData("{\"a\": 1}")]
    public void Safetensors_data_offsets_of_the_wrong_type_are_refused(string offsets)
    {
        using var temp = new TempFolder();
        var path = temp.File("offsets.safetensors");
        File.WriteAllBytes(path, HostileCorpus.SafetensorsWithOffsets(offsets));
        Refused(path, "'w'", "data_offsets");
    }

    [Fact]
    public void A_sharded_index_listing_a_key_twice_is_refused()
    {
        using var temp = new TempFolder();
        File.WriteAllBytes(temp.File("s1.safetensors"), SafeTensors("""{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", Floats(1, 2)));
        var index = temp.File("model.safetensors.index.json");
        File.WriteAllText(index, """{"weight_map": {"w": "s1.safetensors", "w": "s1.safetensors"}}""");
        var e = Assert.Throws<ClipGenException>(() => CheckpointReader.OpenShardedSafetensors(index));
        Assert.Contains("lists tensor 'w' twice", e.Message);
    }

    [Fact]
    public void Limits_can_be_raised()
    {
        using var temp = new TempFolder();
        var path = temp.File("lists.pt");
        HostileCorpus.PickleAmplification(path, 200_000, deflate: false);
        // Within the raised budget the pickle reads (and is then refused for holding no state dict).
        var e = Assert.Throws<ClipGenException>(() => CheckpointReader.Open(path, CheckpointLimits.Default with { PickleBytesPerObject = 1 }));
        Assert.Contains("STOP", e.Message);
    }
}
