using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.IO.Compression;
using System.Text;
using ClipGen.Checkpoints;
using ClipGen.IO;
using ClipGen.Modeling;
using static TorchSharp.torch;

namespace ClipGen.Benchmarks;

/// <summary>
/// Load time and peak RSS of a full-size ViT-B-32 (random weights) from safetensors, a torch.save zip and a TorchScript-like archive.
/// Each format is loaded in a fresh process (this program re-invoked with <c>--child</c>), so peak RSS is that load's alone.
/// Usage: <c>checkpoint-load [--dir D]</c>.
/// </summary>
public static class CheckpointLoadBenchmark
{
    const string Model = "ViT-B-32-quickgelu";

    public static int Run(string[] args)
    {
        if (args.Length >= 2 && args[0] == "--child") return Child(args[1]);
        var dir = args.Length >= 2 && args[0] == "--dir" ? args[1] : Path.Combine(Path.GetTempPath(), "clipgen-bench-ckpt");
        Directory.CreateDirectory(dir);
        var files = new List<(string Format, string Path)>
        {
            ("safetensors", Path.Combine(dir, "model.safetensors")),
            ("torch zip (.pt)", Path.Combine(dir, "state_dict.pt")),
            ("TorchScript-like (.pt)", Path.Combine(dir, "jit.pt")),
        };
        long fp32Bytes;
        using (var model = ClipModelFactory.Create(Model))
        {
            var state = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value);
            fp32Bytes = state.Values.Sum(t => t.numel() * t.ElementSize);
            if (!File.Exists(files[0].Path)) TensorFiles.SaveSafetensors(files[0].Path, state);
            if (!File.Exists(files[1].Path)) TorchZip(files[1].Path, state, torchScript: false);
            if (!File.Exists(files[2].Path)) TorchZip(files[2].Path, state, torchScript: true);
        }
        Console.WriteLine($"{Model}: weights {fp32Bytes / 1e6:0.0} MB fp32; limit 2x = {2 * fp32Bytes / 1e6:0.0} MB peak RSS");
        Console.WriteLine("| format | file MB | load s (median of 3) | peak RSS MB | peak / fp32 |");
        Console.WriteLine("|---|---:|---:|---:|---:|");
        int failures = 0;
        foreach (var (format, path) in files)
        {
            var runs = Enumerable.Range(0, 3).Select(_ => RunChild(path)).ToList();
            var seconds = runs.Select(r => r.Seconds).Order().ElementAt(1);
            var peak = runs.Max(r => r.PeakRss);
            if (peak >= 2 * fp32Bytes) failures++;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {format} | {new FileInfo(path).Length / 1e6:0.0} | {seconds:0.00} | {peak / 1e6:0} | {(double)peak / fp32Bytes:0.00} |"));
        }
        var baseline = RunChild("--baseline");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"baseline (runtime + TorchSharp + creating the empty model, no load): {baseline.Seconds:0.00} s, peak RSS {baseline.PeakRss / 1e6:0} MB"));
        return failures == 0 ? 0 : 1;
    }

    static (double Seconds, long PeakRss) RunChild(string path)
    {
        var self = Environment.ProcessPath!;
        var psi = new ProcessStartInfo(self) { RedirectStandardOutput = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(self) == "dotnet") psi.ArgumentList.Add(typeof(CheckpointLoadBenchmark).Assembly.Location);
        foreach (var a in new[] { "checkpoint-load", "--child", path }) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"child failed for {path}: {output}");
        var parts = output.Trim().Split(' ');
        return (double.Parse(parts[0], CultureInfo.InvariantCulture), long.Parse(parts[1], CultureInfo.InvariantCulture));
    }

    static int Child(string path)
    {
        var clock = Stopwatch.StartNew();
        if (path == "--baseline")
        {
            using var empty = ClipModelFactory.Create(Model);
        }
        else
        {
            using var model = ClipModelFactory.Load(Model, path, LoadOptions.Default);
        }
        var seconds = clock.Elapsed.TotalSeconds;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{seconds:R} {BenchUtil.PeakRssBytes()}"));
        return 0;
    }

    /// <summary>Writes a <c>torch.save(state_dict)</c>-style zip, or a TorchScript-like archive (module tree of attribute bags + constants.pkl).</summary>
    static void TorchZip(string path, Dictionary<string, Tensor> state, bool torchScript)
    {
        var root = torchScript ? "jit" : "archive";
        var keys = state.Keys.ToList();
        var pickle = new Pickle();
        if (torchScript) pickle.Module(Tree(keys), "", state, keys);
        else
        {
            pickle.Global("collections", "OrderedDict").Op(')').Op('R').Op('(');
            foreach (var key in keys) pickle.Str(key).Tensor(keys.IndexOf(key), state[key]);
            pickle.Op('u');
        }
        pickle.Op('.');
        var tmp = path + ".tmp";
        using (var stream = File.Create(tmp))
        using (var zip = new ZipArchive(stream, ZipArchiveMode.Create))
        {
            void Add(string name, ReadOnlySpan<byte> data)
            {
                using var s = zip.CreateEntry(root + "/" + name, CompressionLevel.NoCompression).Open();
                s.Write(data);
            }
            Add("data.pkl", pickle.ToArray());
            if (torchScript) Add("constants.pkl", new byte[] { 0x80, 2, (byte)')', (byte)'.' });
            for (int i = 0; i < keys.Count; i++)
            {
                using var c = state[keys[i]].contiguous();
                Add("data/" + i, c.bytes);
            }
            Add("version", "3\n"u8);
        }
        File.Move(tmp, path, overwrite: true);
    }

    static Dictionary<string, object> Tree(List<string> keys)
    {
        var root = new Dictionary<string, object>(StringComparer.Ordinal);
        foreach (var key in keys)
        {
            var parts = key.Split('.');
            var node = root;
            for (int i = 0; i < parts.Length - 1; i++)
            {
                if (!node.TryGetValue(parts[i], out var child)) node[parts[i]] = child = new Dictionary<string, object>(StringComparer.Ordinal);
                node = (Dictionary<string, object>)child;
            }
            node[parts[^1]] = key;
        }
        return root;
    }

    sealed class Pickle
    {
        readonly MemoryStream _out = new();
        public Pickle() { _out.WriteByte(0x80); _out.WriteByte(2); }
        public Pickle Op(char c) { _out.WriteByte((byte)c); return this; }
        public Pickle Global(string module, string name) { _out.WriteByte((byte)'c'); _out.Write(Encoding.ASCII.GetBytes(module + "\n" + name + "\n")); return this; }
        public Pickle Str(string s)
        {
            var b = Encoding.UTF8.GetBytes(s);
            Span<byte> n = stackalloc byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(n, b.Length);
            _out.WriteByte((byte)'X'); _out.Write(n); _out.Write(b);
            return this;
        }
        public Pickle Int(long v)
        {
            Span<byte> n = stackalloc byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(n, checked((int)v));
            _out.WriteByte((byte)'J'); _out.Write(n);
            return this;
        }
        Pickle Ints(IEnumerable<long> values) { Op('('); foreach (var v in values) Int(v); return Op('t'); }

        public Pickle Tensor(int storage, Tensor t)
        {
            var shape = t.shape;
            var stride = new long[shape.Length];
            long s = 1;
            for (int i = shape.Length - 1; i >= 0; i--) { stride[i] = s; s *= shape[i]; }
            var type = t.dtype == ScalarType.Int64 ? "LongStorage" : "FloatStorage";
            Global("torch._utils", "_rebuild_tensor_v2").Op('(');
            Op('(').Str("storage").Global("torch", type).Str(storage.ToString(CultureInfo.InvariantCulture)).Str("cpu").Int(t.numel()).Op('t').Op('Q');
            Int(0).Ints(shape).Ints(stride).Op((char)0x89);
            Global("collections", "OrderedDict").Op(')').Op('R');
            return Op('t').Op('R');
        }

        public void Module(Dictionary<string, object> node, string name, Dictionary<string, Tensor> state, List<string> keys)
        {
            Global("__torch__.bench", "Module").Op(')').Op((char)0x81).Op('}').Op('(');
            foreach (var (child, value) in node)
            {
                Str(child);
                if (value is string key) Tensor(keys.IndexOf(key), state[key]);
                else Module((Dictionary<string, object>)value, child, state, keys);
            }
            Op('u').Op('b');
        }

        public byte[] ToArray() => _out.ToArray();
    }
}
