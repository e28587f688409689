using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace ClipGen.Tests.Checkpoints;

/// <summary>Builds small checkpoint files by hand (safetensors, torch zips, raw pickles) for the tests, in a temp folder.</summary>
public sealed class TempFolder : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("clipgen-ckpt-").FullName;

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}

public static class CheckpointFiles
{
    /// <summary>A safetensors file: the 8-byte little-endian header length, the header, the data.</summary>
    public static byte[] SafeTensors(string header, byte[] data, ulong? claimedHeaderLength = null)
    {
        var json = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + json.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, claimedHeaderLength ?? (ulong)json.Length);
        json.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + json.Length);
        return bytes;
    }

    public static byte[] Floats(params float[] values)
    {
        var bytes = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), values[i]);
        return bytes;
    }

    /// <summary>A zip with the given entries, stored (uncompressed) like torch.save writes them.</summary>
    public static void Zip(string path, params (string Name, byte[] Data)[] entries)
    {
        using var stream = System.IO.File.Create(path);
        using var zip = new ZipArchive(stream, ZipArchiveMode.Create);
        foreach (var (name, data) in entries)
        {
            var entry = zip.CreateEntry(name, CompressionLevel.NoCompression);
            using var s = entry.Open();
            s.Write(data);
        }
    }
}

/// <summary>Writes pickle opcodes by hand (protocol 2), enough for a state dict and for hostile payloads.</summary>
public sealed class PickleWriter
{
    readonly MemoryStream _out = new();

    public PickleWriter() => Op(0x80, 2);

    public PickleWriter Op(params byte[] bytes) { _out.Write(bytes); return this; }
    public PickleWriter Mark() => Op((byte)'(');
    public PickleWriter Tuple() => Op((byte)'t');
    public PickleWriter EmptyDict() => Op((byte)'}');
    public PickleWriter EmptyTuple() => Op((byte)')');
    public PickleWriter SetItems() => Op((byte)'u');
    public PickleWriter Reduce() => Op((byte)'R');
    public PickleWriter False() => Op(0x89);
    public PickleWriter Stop() => Op((byte)'.');
    public PickleWriter PersId() => Op((byte)'Q');
    public PickleWriter Global(string module, string name) => Op([(byte)'c', .. Encoding.ASCII.GetBytes(module + "\n" + name + "\n")]);

    public PickleWriter StackGlobal(string module, string name) => Str(module).Str(name).Op(0x93);

    public PickleWriter Str(string s)
    {
        var b = Encoding.UTF8.GetBytes(s);
        Op((byte)'X');
        Span<byte> n = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(n, b.Length);
        _out.Write(n);
        _out.Write(b);
        return this;
    }

    public PickleWriter Int(long v)
    {
        Op((byte)'J');
        Span<byte> n = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(n, checked((int)v));
        _out.Write(n);
        return this;
    }

    public PickleWriter Ints(params long[] values)
    {
        Mark();
        foreach (var v in values) Int(v);
        return Tuple();
    }

    /// <summary>Pushes <c>_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())</c>.</summary>
    public PickleWriter Tensor(string storageType, string key, long storageElements, long offset, long[] size, long[] stride, string location = "cpu")
    {
        Global("torch._utils", "_rebuild_tensor_v2");
        Mark();
        Mark().Str("storage").Global("torch", storageType).Str(key).Str(location).Int(storageElements).Tuple().PersId();
        Int(offset).Ints(size).Ints(stride).False();
        Global("collections", "OrderedDict").EmptyTuple().Reduce();
        return Tuple().Reduce();
    }

    public byte[] ToArray() => _out.ToArray();
}
