using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Hashing;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using ClipGen.Tests.Checkpoints;

namespace ClipGen.Tests.Hardening;

/// <summary>
/// Generators of the hostile inputs of issue 12, shared by the unit tests and by the corpus runner (tools/ClipGen.Hostile, which
/// links this file and runs the real <c>clipgen</c> on each). Large inputs are generated, never committed. No xunit here.
/// </summary>
public static class HostileCorpus
{
    // ------------------------------------------------------------------ specs (defects 1, 2)

    /// <summary>The demo spec's text, a valid spec to put hostile YAML in front of.</summary>
    public static string ValidSpec(string repoRoot) => File.ReadAllText(Path.Combine(repoRoot, "specs", "demo-tiny.yaml"));

    /// <summary><paramref name="levels"/> levels of <c>aN: &amp;aN [*aN-1 ×fanOut]</c> before <paramref name="spec"/>.</summary>
    public static string AliasBomb(string spec, int levels = 10, int fanOut = 10)
    {
        var sb = new StringBuilder("a0: &a0 [x]\n");
        for (int i = 1; i < levels; i++)
            sb.Append($"a{i}: &a{i} [").Append(string.Join(",", Enumerable.Repeat($"*a{i - 1}", fanOut))).Append("]\n");
        return sb + spec;
    }

    /// <summary>The same bomb with nested mappings instead of lists.</summary>
    public static string MappingAliasBomb(string spec, int levels = 6, int fanOut = 40)
    {
        var sb = new StringBuilder("b0: &b0 {k: v, l: w}\n");
        for (int i = 1; i < levels; i++)
            sb.Append($"b{i}: &b{i} {{").Append(string.Join(", ", Enumerable.Range(0, fanOut).Select(j => $"k{j}: *b{i - 1}"))).Append("}\n");
        return sb + spec;
    }

    /// <summary><c>x: </c> followed by <paramref name="depth"/> <c>[</c> and as many <c>]</c>, before <paramref name="spec"/>.</summary>
    public static string DeepNesting(string spec, int depth = 20_000) => "x: " + new string('[', depth) + new string(']', depth) + "\n" + spec;

    /// <summary>Block mappings nested <paramref name="depth"/> deep by indentation.</summary>
    public static string DeepBlockMappings(int depth = 5_000)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < depth; i++) sb.Append(' ', i).Append("k:\n");
        return sb.Append(' ', depth).Append("v\n").ToString();
    }

    // ------------------------------------------------------------------ pickles and torch zips (defects 3–6, 14, 17)

    static readonly byte[] Constants = [0x80, 0x02, (byte)')', (byte)'.'];

    /// <summary>
    /// A torch zip whose <c>data.pkl</c> is <c>\x80\x02</c> + <c>]</c>×<paramref name="lists"/> + <c>.</c>, deflated (the issue's case:
    /// 200M lists in 204 KB) or stored. Streams the pickle into the zip, so nothing of that size is held in memory.
    /// </summary>
    public static void PickleAmplification(string path, long lists, bool deflate)
    {
        using var file = File.Create(path);
        using var zip = new ZipArchive(file, ZipArchiveMode.Create);
        var entry = zip.CreateEntry("archive/data.pkl", deflate ? CompressionLevel.SmallestSize : CompressionLevel.NoCompression);
        using var s = entry.Open();
        s.Write([0x80, 0x02]);
        var chunk = new byte[1 << 20];
        Array.Fill(chunk, (byte)']');
        for (long left = lists; left > 0; left -= chunk.Length) s.Write(chunk, 0, (int)Math.Min(left, chunk.Length));
        s.WriteByte((byte)'.');
    }

    /// <summary>
    /// A TorchScript archive of <paramref name="nodes"/> modules, each with two attributes naming the next one (so there are
    /// 2^nodes paths to the last one, which holds one tensor).
    /// </summary>
    public static void TorchScriptDag(string path, int nodes)
    {
        var p = new PickleWriter();
        // The leaf: __torch__.dag.Node with {"w": tensor}, memo slot `nodes`.
        p.Global("__torch__.dag", "Node").EmptyTuple().Op(0x81);
        p.EmptyDict().Mark().Str("w").Tensor("FloatStorage", "0", 1, 0, [], []).SetItems().Op((byte)'b');
        p.Op((byte)'r').Op(Le32(nodes)).Op((byte)'0');
        for (int i = nodes - 1; i >= 0; i--)
        {
            p.Global("__torch__.dag", "Node").EmptyTuple().Op(0x81);
            p.EmptyDict().Mark().Str("a").Op((byte)'j').Op(Le32(i + 1)).Str("b").Op((byte)'j').Op(Le32(i + 1)).SetItems().Op((byte)'b');
            p.Op((byte)'r').Op(Le32(i));
            if (i > 0) p.Op((byte)'0');
        }
        CheckpointFiles.Zip(path, ("dag/data.pkl", p.Stop().ToArray()), ("dag/constants.pkl", Constants), ("dag/data/0", CheckpointFiles.Floats(1)));
    }

    /// <summary>
    /// A TorchScript archive whose root has <paramref name="classes"/> children, each of its own class, all declared in one code file
    /// padded to <paramref name="codeBytes"/> bytes (stored, as torch.jit.save stores it).
    /// </summary>
    public static void SharedCodeFile(string path, int classes, int codeBytes)
    {
        var p = new PickleWriter();
        p.Global("__torch__.big", "Root").EmptyTuple().Op(0x81).EmptyDict().Mark();
        for (int i = 0; i < classes; i++)
        {
            p.Str("c" + i).Global("__torch__.big", "C" + i).EmptyTuple().Op(0x81);
            p.EmptyDict().Mark().Str("w").Tensor("FloatStorage", i.ToString(), 1, 0, [], []).SetItems().Op((byte)'b');
        }
        p.SetItems().Op((byte)'b');
        var code = new StringBuilder();
        for (int i = 0; i < classes; i++) code.Append($"class C{i}(Module):\n  __parameters__ = [\"w\", ]\n  w : Tensor\n");
        var filler = "  # " + new string('x', 76) + "\n";
        while (code.Length < codeBytes) code.Append(filler);
        using var file = File.Create(path);
        using var zip = new ZipArchive(file, ZipArchiveMode.Create);
        Add(zip, "big/data.pkl", p.Stop().ToArray(), CompressionLevel.NoCompression);
        Add(zip, "big/constants.pkl", Constants, CompressionLevel.NoCompression);
        Add(zip, "big/code/__torch__/big.py", Encoding.UTF8.GetBytes(code.ToString()), CompressionLevel.NoCompression);
        for (int i = 0; i < classes; i++) Add(zip, $"big/data/{i}", CheckpointFiles.Floats(i), CompressionLevel.NoCompression);
    }

    /// <summary>
    /// A state dict of <paramref name="views"/> strided 2×2 views (stride [1, 2]) spread over one storage of
    /// <paramref name="storageFloats"/> floats (value = index), deflated or stored.
    /// </summary>
    public static void StridedViews(string path, int views, int storageFloats, bool deflate)
    {
        var p = new PickleWriter().EmptyDict().Mark();
        for (int i = 0; i < views; i++)
            p.Str("v" + i).Tensor("FloatStorage", "0", storageFloats, StridedViewOffset(i, views, storageFloats), [2, 2], [1, 2]);
        p.SetItems();
        using var file = File.Create(path);
        using var zip = new ZipArchive(file, ZipArchiveMode.Create);
        Add(zip, "archive/data.pkl", p.Stop().ToArray(), CompressionLevel.NoCompression);
        var entry = zip.CreateEntry("archive/data/0", deflate ? CompressionLevel.Fastest : CompressionLevel.NoCompression);
        using var s = entry.Open();
        var chunk = new byte[1 << 16];
        for (int start = 0; start < storageFloats; start += chunk.Length / 4)
        {
            int n = Math.Min(chunk.Length / 4, storageFloats - start);
            for (int k = 0; k < n; k++) BinaryPrimitives.WriteSingleLittleEndian(chunk.AsSpan(4 * k), start + k);
            s.Write(chunk, 0, 4 * n);
        }
    }

    /// <summary>Where view <paramref name="i"/> of <see cref="StridedViews"/> starts: spread evenly, the last near the end.</summary>
    public static long StridedViewOffset(int i, int views, int storageFloats) => (long)(storageFloats - 4) * (i + 1) / views;

    /// <summary>Flips one byte of the stored data of <paramref name="entryName"/> in a zip file (found through the central directory).</summary>
    public static void FlipStoredByte(string zipPath, string entryName, int offsetInData)
    {
        var bytes = File.ReadAllBytes(zipPath);
        var name = Encoding.UTF8.GetBytes(entryName);
        for (int pos = bytes.Length - 46; pos >= 0; pos--)
        {
            if (BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(pos)) != 0x02014b50) continue;
            int nameLength = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(pos + 28));
            if (nameLength != name.Length || !bytes.AsSpan(pos + 46, nameLength).SequenceEqual(name)) continue;
            int local = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(pos + 42));
            int data = local + 30 + BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(local + 26)) + BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(local + 28));
            bytes[data + offsetInData] ^= 0x40;
            File.WriteAllBytes(zipPath, bytes);
            return;
        }
        throw new InvalidOperationException($"entry {entryName} not found in {zipPath}");
    }

    /// <summary>
    /// A state dict whose deflated <c>data.pkl</c> declares <paramref name="extra"/> more uncompressed bytes than its data holds
    /// (local header and central directory agree, so only reading finds it short).
    /// </summary>
    public static void ShortEntry(string path, int extra = 100)
    {
        var pickle = new PickleWriter().EmptyDict().Mark().Str("w").Tensor("FloatStorage", "0", 2, 0, [2], [1]).SetItems().Stop().ToArray();
        using (var file = File.Create(path))
        using (var zip = new ZipArchive(file, ZipArchiveMode.Create))
        {
            Add(zip, "archive/data.pkl", pickle, CompressionLevel.Optimal);
            Add(zip, "archive/data/0", CheckpointFiles.Floats(1, 2), CompressionLevel.NoCompression);
        }
        var bytes = File.ReadAllBytes(path);
        // Local header: uncompressed size at +22; central directory header: at +24.
        for (int pos = 0; pos + 46 <= bytes.Length; pos++)
        {
            uint sig = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(pos));
            if (sig == 0x04034b50 && Encoding.ASCII.GetString(bytes, pos + 30, 16) == "archive/data.pkl")
                BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(pos + 22), pickle.Length + extra);
            if (sig == 0x02014b50 && Encoding.ASCII.GetString(bytes, pos + 46, 16) == "archive/data.pkl")
                BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(pos + 24), pickle.Length + extra);
        }
        File.WriteAllBytes(path, bytes);
    }

    /// <summary>A safetensors file whose one tensor has <paramref name="offsets"/> (raw JSON) as its data_offsets.</summary>
    public static byte[] SafetensorsWithOffsets(string offsets) =>
        CheckpointFiles.SafeTensors("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":" + offsets + "}}", CheckpointFiles.Floats(1, 2));

    static void Add(ZipArchive zip, string name, byte[] data, CompressionLevel level)
    {
        var entry = zip.CreateEntry(name, level);
        using var s = entry.Open();
        s.Write(data);
    }

    static byte[] Le32(int v)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(b, v);
        return b;
    }

    // ------------------------------------------------------------------ images and training sets (defects 9, 18)

    /// <summary>16 small coloured PNGs and a <c>filepath,caption</c> CSV of them in <paramref name="dir"/>, plus the given bad files as extra rows.</summary>
    /// <summary>
    /// A copy of a reference checkpoint folder (<paramref name="source"/>: its <paramref name="config"/> and
    /// <paramref name="weights"/>) in <paramref name="dir"/>, with the config changed by <paramref name="edit"/>: a lying config.
    /// </summary>
    public static string EditedCheckpointFolder(string dir, string source, string config, string weights, Action<JsonObject> edit)
    {
        Directory.CreateDirectory(dir);
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(source, config)))!.AsObject();
        edit(json);
        File.WriteAllText(Path.Combine(dir, config), json.ToJsonString());
        File.Copy(Path.Combine(source, weights), Path.Combine(dir, weights));
        return dir;
    }

    public static string TrainingSet(string dir, params (string Name, byte[] Bytes)[] bad)
    {
        Directory.CreateDirectory(dir);
        var colors = new (string, byte, byte, byte)[] { ("red", 220, 20, 20), ("green", 20, 200, 40), ("blue", 30, 40, 220), ("yellow", 230, 220, 30) };
        var rows = new List<string> { "filepath,caption" };
        for (int i = 0; i < 16; i++)
        {
            var (name, r, g, b) = colors[i % 4];
            File.WriteAllBytes(Path.Combine(dir, $"img{i}.png"), SolidPng(40, 36, r, g, b));
            rows.Add($"img{i}.png,a {name} picture");
        }
        foreach (var (name, bytes) in bad)
        {
            File.WriteAllBytes(Path.Combine(dir, name), bytes);
            rows.Add($"{name},a broken picture");
        }
        var csv = Path.Combine(dir, "train.csv");
        File.WriteAllText(csv, string.Join("\n", rows) + "\n");
        return csv;
    }

    /// <summary>A PNG whose header declares <paramref name="width"/>×<paramref name="height"/> and holds one row (a decompression bomb's header).</summary>
    public static byte[] PngHeader(int width, int height) =>
        [.. PngSignature, .. PngChunk("IHDR", Ihdr(width, height)), .. PngChunk("IDAT", Zlib(new byte[1 + 3 * width])), .. PngChunk("IEND", [])];

    /// <summary>An 8-bit RGB PNG of one colour.</summary>
    public static byte[] SolidPng(int width, int height, byte r, byte g, byte b)
    {
        var raw = new byte[height * (1 + 3 * width)];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                int o = y * (1 + 3 * width) + 1 + 3 * x;
                raw[o] = r; raw[o + 1] = g; raw[o + 2] = b;
            }
        return [.. PngSignature, .. PngChunk("IHDR", Ihdr(width, height)), .. PngChunk("IDAT", Zlib(raw)), .. PngChunk("IEND", [])];
    }

    static readonly byte[] PngSignature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    static byte[] Ihdr(int width, int height)
    {
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8; ihdr[9] = 2; // 8-bit RGB
        return ihdr;
    }

    static byte[] PngChunk(string type, byte[] data)
    {
        var typed = Encoding.ASCII.GetBytes(type).Concat(data).ToArray();
        var chunk = new byte[8 + data.Length + 4];
        BinaryPrimitives.WriteInt32BigEndian(chunk, data.Length);
        typed.CopyTo(chunk, 4);
        BinaryPrimitives.WriteUInt32BigEndian(chunk.AsSpan(8 + data.Length), Crc32.HashToUInt32(typed));
        return chunk;
    }

    static byte[] Zlib(byte[] raw)
    {
        using var ms = new MemoryStream();
        using (var z = new ZLibStream(ms, CompressionLevel.Optimal, leaveOpen: true)) z.Write(raw);
        return ms.ToArray();
    }

    /// <summary>
    /// <paramref name="jpeg"/> with 48 bytes in the middle of its entropy-coded scan overwritten (no 0xFF, so no marker is made):
    /// the headers stay valid and the file is whole, only the scan is corrupt.
    /// </summary>
    public static byte[] CorruptMidScan(byte[] jpeg)
    {
        int sos = -1;
        for (int i = 2; i + 3 < jpeg.Length; i++)
            if (jpeg[i] == 0xFF && jpeg[i + 1] == 0xDA) { sos = i; break; }
        if (sos < 0) throw new ArgumentException("no SOS marker");
        int start = sos + 2 + BinaryPrimitives.ReadUInt16BigEndian(jpeg.AsSpan(sos + 2));
        int end = jpeg.Length - 2; // before EOI
        var bytes = jpeg.ToArray();
        var rng = new Random(12);
        for (int i = start + (end - start) / 2, k = 0; k < 48 && i < end; i++, k++) bytes[i] = (byte)rng.Next(0, 0xFF);
        return bytes;
    }

    // ------------------------------------------------------------------ downloads (defect 11)

    /// <summary>demo-tiny with one unpinned direct-URL entry <c>pretrained.web</c> (a torch.save file), for <c>clipgen download</c>.</summary>
    public static string UnpinnedSpec(string spec) =>
        spec.Replace("name: demo-tiny", "name: demo-web").Replace("class_name: DemoTiny", "class_name: DemoWeb")
        + "pretrained:\n  web:\n    url: https://weights.example/demo/model.pt\n    format: torch\n";
}

/// <summary>How <see cref="HostileHttpServer"/> misbehaves.</summary>
public enum HostileServerMode
{
    /// <summary>Accepts the connection and never answers.</summary>
    Silent,
    /// <summary>Sends headers (no Content-Length), then one byte every <c>DripInterval</c>.</summary>
    Drip,
    /// <summary>Sends headers without a Content-Length, then bytes until the client goes away (or 4 GiB).</summary>
    Endless,
    /// <summary>Sends the first half of the body without a Content-Length and closes, as if the connection dropped.</summary>
    TruncatedNoLength,
    /// <summary>Sends the whole body without a Content-Length and closes (a complete close-delimited body).</summary>
    WholeNoLength,
}

/// <summary>
/// An HTTP server on 127.0.0.1 that misbehaves in one <see cref="HostileServerMode"/>. Bounded: each connection lives at most
/// <see cref="MaxConnectionTime"/>, and everything stops on <see cref="Dispose"/>.
/// </summary>
public sealed class HostileHttpServer : IDisposable
{
    readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    readonly CancellationTokenSource _stop = new();
    readonly Task _loop;
    readonly HostileServerMode _mode;
    readonly byte[] _body;
    int _connections;

    public HostileHttpServer(HostileServerMode mode, byte[]? body = null, TimeSpan? dripInterval = null)
    {
        _mode = mode;
        _body = body ?? [];
        DripInterval = dripInterval ?? TimeSpan.FromSeconds(2);
        _listener.Start();
        _loop = Task.Run(LoopAsync);
    }

    public TimeSpan DripInterval { get; }
    public static TimeSpan MaxConnectionTime { get; } = TimeSpan.FromSeconds(120);
    public Uri BaseUrl => new($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/");
    public int Connections => Volatile.Read(ref _connections);

    async Task LoopAsync()
    {
        var clients = new List<Task>();
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                Interlocked.Increment(ref _connections);
                clients.Add(Task.Run(() => ServeAsync(client)));
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException) { }
        try { await Task.WhenAll(clients); } catch (Exception) { }
    }

    async Task ServeAsync(TcpClient client)
    {
        using var _ = client;
        using var life = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        life.CancelAfter(MaxConnectionTime);
        try
        {
            var stream = client.GetStream();
            var head = new StringBuilder();
            var one = new byte[1];
            while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
            {
                if (await stream.ReadAsync(one, life.Token) == 0) return;
                head.Append((char)one[0]);
            }
            if (_mode == HostileServerMode.Silent)
            {
                await Task.Delay(Timeout.Infinite, life.Token);
                return;
            }
            await stream.WriteAsync(Encoding.ASCII.GetBytes("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"), life.Token);
            switch (_mode)
            {
                case HostileServerMode.Drip:
                    for (int i = 0; ; i++)
                    {
                        await stream.WriteAsync(new[] { (byte)'P' }, life.Token);
                        await Task.Delay(DripInterval, life.Token);
                    }
                case HostileServerMode.Endless:
                {
                    var chunk = new byte[1 << 16];
                    for (long sent = 0; sent < 4L << 30; sent += chunk.Length) await stream.WriteAsync(chunk, life.Token);
                    break;
                }
                case HostileServerMode.TruncatedNoLength:
                    await stream.WriteAsync(_body.AsMemory(0, _body.Length / 2), life.Token);
                    break;
                case HostileServerMode.WholeNoLength:
                    await stream.WriteAsync(_body, life.Token);
                    break;
            }
            await stream.FlushAsync(life.Token);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or SocketException or ObjectDisposedException) { }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        try { _loop.Wait(TimeSpan.FromSeconds(10)); } catch (AggregateException) { }
    }
}
