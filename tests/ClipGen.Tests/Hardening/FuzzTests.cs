using System.Text;
using ClipGen.Checkpoints;
using ClipGen.Specs;
using ClipGen.Tests.Checkpoints;
using Xunit;

namespace ClipGen.Tests.Hardening;

/// <summary>
/// Seeded fuzz loops over the readers of untrusted input (issue 12): the spec parser and resolver, the safetensors header, the
/// pickle opcodes and the zip central directory. Every case must give a result or a one-line <see cref="ClipGenException"/> /
/// <see cref="SpecException"/>, never another exception, and allocate a bounded amount. A failure names the seed and case to replay.
/// </summary>
public class FuzzTests
{
    const long MaxAllocatedPerCase = 64L << 20;

    static void Case(int seed, int index, string what, Action run)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        try { run(); }
        catch (Exception e) when (e is ClipGenException or SpecException)
        {
            Assert.False(e.Message.Contains('\n'), $"{what} seed {seed} case {index}: a message with a line break: {e.Message}");
            Assert.False(string.IsNullOrWhiteSpace(e.Message), $"{what} seed {seed} case {index}: an empty message");
        }
        catch (Exception e)
        {
            Assert.Fail($"{what} seed {seed} case {index}: {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < MaxAllocatedPerCase, $"{what} seed {seed} case {index}: allocated {allocated:N0} bytes");
    }

    static readonly string[] YamlPieces = ["[", "]", "{", "}", ": ", "- ", "&a ", "*a", "&b ", "*b", "\n", "\n  ", "\n    ", "'", "\"", "#", ",", "? ", "|", ">", "!!str ", "!x ", "<<: ", "---\n", "...\n", "%YAML 1.2\n", "\t", "1e308", "-1", "null", "~", "0x10", "true", "\\", "\u00e9", "\uFEFF", "\0"];

    [Fact]
    public void Spec_parser_and_resolver()
    {
        const int seed = 1201;
        var rng = new Random(seed);
        var valid = HostileCorpus.ValidSpec(Fixtures.RepoRoot);
        for (int i = 0; i < 2500; i++)
        {
            var text = new StringBuilder(valid);
            int edits = 1 + rng.Next(8);
            for (int k = 0; k < edits; k++)
            {
                int at = rng.Next(text.Length + 1);
                switch (rng.Next(4))
                {
                    case 0: text.Insert(at, YamlPieces[rng.Next(YamlPieces.Length)]); break;
                    case 1: if (at < text.Length) text.Remove(at, Math.Min(text.Length - at, 1 + rng.Next(12))); break;
                    case 2: text.Insert(at, new string(YamlPieces[rng.Next(4)][0], 1 + rng.Next(200))); break;
                    default: if (at < text.Length) text[at] = (char)rng.Next(0x20, 0x7F); break;
                }
            }
            var yaml = i % 10 == 9 ? RandomYaml(rng, 0) : text.ToString();
            Case(seed, i, "spec", () => SpecResolver.ResolveSingle("/fuzz/spec.yaml", yaml));
        }
    }

    static string RandomYaml(Random rng, int depth)
    {
        if (depth > 6 || rng.Next(3) == 0) return YamlPieces[rng.Next(YamlPieces.Length)] + "v" + rng.Next(100);
        var items = Enumerable.Range(0, rng.Next(4)).Select(_ => RandomYaml(rng, depth + 1));
        return rng.Next(2) == 0 ? "[" + string.Join(", ", items) + "]" : "{" + string.Join(", ", items.Select((v, j) => $"k{j}: {v}")) + "}";
    }

    static readonly string[] JsonValues = ["0", "8", "-1", "1e30", "9223372036854775807", "18446744073709551616", "1.5", "\"8\"", "null", "true", "[]", "{}", "[0, 8]", "[8, 0]", "[0]", "[0, 8, 16]", "\"F32\"", "\"F99\"", "[2]", "[-2]", "[2, 2]"];
    static readonly string[] Keys = ["dtype", "shape", "data_offsets", "__metadata__", "w", "x", ""];

    [Fact]
    public void Safetensors_header()
    {
        const int seed = 1202;
        var rng = new Random(seed);
        using var temp = new TempFolder();
        var path = temp.File("fuzz.safetensors");
        var valid = CheckpointFiles.SafeTensors("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I64","shape":[1],"data_offsets":[8,16]}}""", new byte[16]);
        for (int i = 0; i < 1500; i++)
        {
            byte[] bytes;
            if (i % 2 == 0)
            {
                var entries = Enumerable.Range(0, rng.Next(4)).Select(_ =>
                {
                    var fields = Enumerable.Range(0, rng.Next(5)).Select(_ => $"\"{Keys[rng.Next(Keys.Length)]}\": {JsonValues[rng.Next(JsonValues.Length)]}");
                    return $"\"{Keys[rng.Next(Keys.Length)]}\": " + (rng.Next(5) == 0 ? JsonValues[rng.Next(JsonValues.Length)] : "{" + string.Join(", ", fields) + "}");
                });
                bytes = CheckpointFiles.SafeTensors("{" + string.Join(", ", entries) + "}", new byte[rng.Next(64)]);
            }
            else
            {
                bytes = valid.ToArray();
                for (int k = 1 + rng.Next(4); k > 0; k--) bytes[rng.Next(bytes.Length)] = (byte)rng.Next(256);
            }
            File.WriteAllBytes(path, bytes);
            Case(seed, i, "safetensors", () => ReadAll(path));
        }
    }

    static void ReadAll(string path)
    {
        using var source = CheckpointReader.Open(path);
        foreach (var e in source.Entries) { using var t = e.ToTensor(); }
    }

    /// <summary>Opcodes the reader knows, and a few it does not.</summary>
    static readonly byte[] Opcodes = [0x80, 0x95, (byte)'.', (byte)'(', (byte)'0', (byte)'1', (byte)'2', (byte)'N', 0x88, 0x89, (byte)'J', (byte)'K', (byte)'M', 0x8a,
        (byte)'G', (byte)'X', 0x8c, 0x8d, (byte)'T', (byte)'U', (byte)'B', (byte)'C', (byte)')', (byte)'t', 0x85, 0x86, 0x87, (byte)']', (byte)'l', (byte)'a', (byte)'e',
        (byte)'}', (byte)'d', (byte)'s', (byte)'u', (byte)'c', 0x93, (byte)'R', 0x81, (byte)'b', (byte)'Q', (byte)'h', (byte)'j', (byte)'q', (byte)'r', 0x94, (byte)'I', (byte)'i', 0x8e, 0xFF];

    [Fact]
    public void Pickle_opcodes()
    {
        const int seed = 1203;
        var rng = new Random(seed);
        string[] globals = ["torch\nFloatStorage\n", "torch._utils\n_rebuild_tensor_v2\n", "collections\nOrderedDict\n", "__torch__.m\nA\n", "os\nsystem\n", "builtins\neval\n", "torch\n"];
        for (int i = 0; i < 4000; i++)
        {
            var p = new MemoryStream();
            p.Write([0x80, 0x02]);
            for (int k = rng.Next(1, 60); k > 0; k--)
            {
                byte op = Opcodes[rng.Next(Opcodes.Length)];
                p.WriteByte(op);
                switch (op)
                {
                    case (byte)'J': case (byte)'j': case (byte)'r': case (byte)'X': case (byte)'T': case (byte)'B':
                        // A 4-byte argument: small lengths mostly, sometimes huge.
                        p.Write(BitConverter.GetBytes(rng.Next(4) == 0 ? rng.Next() : rng.Next(8)));
                        break;
                    case 0x8d: case 0x95: p.Write(BitConverter.GetBytes(rng.Next(3) == 0 ? long.MaxValue - rng.Next(9) : rng.Next(8))); break;
                    case (byte)'K': case (byte)'h': case (byte)'q': case 0x8c: case (byte)'U': case (byte)'C': case 0x8a: case 0x80: p.WriteByte((byte)rng.Next(rng.Next(2) == 0 ? 8 : 256)); break;
                    case (byte)'M': p.Write(BitConverter.GetBytes((ushort)rng.Next(65536))); break;
                    case (byte)'G': p.Write(BitConverter.GetBytes(rng.NextDouble())); break;
                    case (byte)'c': p.Write(Encoding.ASCII.GetBytes(globals[rng.Next(globals.Length)])); break;
                }
                if (rng.Next(6) == 0) p.Write(Encoding.ASCII.GetBytes("abc"));
            }
            if (rng.Next(2) == 0) p.WriteByte((byte)'.');
            var bytes = p.ToArray();
            bool torchScript = rng.Next(2) == 0;
            Case(seed, i, "pickle", () => RestrictedUnpickler.Load(bytes, "fuzz.pt", torchScript));
        }
    }

    [Fact]
    public void Zip_central_directory_and_local_headers()
    {
        const int seed = 1204;
        var rng = new Random(seed);
        using var temp = new TempFolder();
        var validPath = temp.File("valid.pt");
        var pickle = new PickleWriter().EmptyDict().Mark().Str("w").Tensor("FloatStorage", "0", 4, 0, [2, 2], [1, 2]).SetItems().Stop().ToArray();
        CheckpointFiles.Zip(validPath, ("archive/data.pkl", pickle), ("archive/data/0", CheckpointFiles.Floats(1, 2, 3, 4)), ("archive/version", "3\n"u8.ToArray()));
        var valid = File.ReadAllBytes(validPath);
        var path = temp.File("fuzz.pt");
        for (int i = 0; i < 2000; i++)
        {
            var bytes = valid.ToArray();
            // Mostly the central directory and end record (the last ~230 bytes), sometimes anywhere.
            for (int k = 1 + rng.Next(4); k > 0; k--)
            {
                int at = rng.Next(3) == 0 ? rng.Next(bytes.Length) : bytes.Length - 1 - rng.Next(Math.Min(230, bytes.Length));
                bytes[at] = rng.Next(4) == 0 ? (byte)0xFF : (byte)rng.Next(256);
            }
            if (rng.Next(10) == 0) bytes = bytes[..rng.Next(bytes.Length)];
            File.WriteAllBytes(path, bytes);
            Case(seed, i, "zip", () => ReadAll(path));
        }
    }
}
