using ClipGen.Checkpoints;
using Xunit;

namespace ClipGen.Tests.Checkpoints;

[CollectionDefinition(nameof(FileHandleCollection), DisableParallelization = true)]
public class FileHandleCollection;

/// <summary>Opening and disposing checkpoints many times leaves no file handles or mappings behind.</summary>
[Collection(nameof(FileHandleCollection))]
public class HandleTests
{
    static int OpenDescriptors() => Directory.GetFiles("/proc/self/fd").Length;

    [Fact]
    public void Open_read_dispose_many_times_does_not_leak_handles()
    {
        if (!OperatingSystem.IsLinux()) return;
        string[] files =
        [
            Fixtures.Path_("reference", "openai", "tiny-vit", "model.safetensors"),
            Fixtures.Path_("reference", "openai", "tiny-vit", "openai_state_dict.pt"),
            Fixtures.Path_("reference", "openai", "tiny-vit", "openai_jit.pt"),
        ];
        foreach (var f in files) { using var warm = CheckpointReader.Open(f); using var _ = warm.Entries[0].ToTensor(); }

        GC.Collect();
        GC.WaitForPendingFinalizers();
        int before = OpenDescriptors();
        for (int i = 0; i < 60; i++)
            foreach (var f in files)
            {
                using var source = CheckpointReader.Open(f);
                using var t = source.Entries[i % source.Entries.Count].ToTensor();
            }
        // Failed opens must release the file too.
        using var temp = new TempFolder();
        var bad = temp.File("bad.safetensors");
        File.WriteAllBytes(bad, CheckpointFiles.SafeTensors("""{"a":{"dtype":"F99","shape":[1],"data_offsets":[0,4]}}""", CheckpointFiles.Floats(1)));
        for (int i = 0; i < 60; i++)
            Assert.Throws<ClipGenException>(() => CheckpointReader.Open(bad));
        int after = OpenDescriptors();
        Assert.True(after <= before + 5, $"file descriptors grew from {before} to {after}");
    }

    [Fact]
    public void Entries_refuse_to_read_after_dispose()
    {
        var source = CheckpointReader.Open(Fixtures.Path_("reference", "openai", "tiny-vit", "model.safetensors"));
        var entry = source.Entries[0];
        source.Dispose();
        source.Dispose(); // idempotent
        Assert.Throws<ObjectDisposedException>(() => entry.ToTensor());
    }
}
