using System.Text.Json;
using ClipGen.IO;

namespace ClipGen.Checkpoints;

/// <summary>
/// Opens a checkpoint file of any supported format, detected from its content (never its extension):
/// safetensors, a <c>torch.save</c> zip (<c>.pt</c>/<c>.pth</c>/<c>.bin</c>), or a TorchScript archive (OpenAI's released <c>ViT-B-32.pt</c> form).
/// Every problem with the file is a one-line <see cref="ClipGenException"/> naming the file (and the tensor when there is one).
/// </summary>
public static class CheckpointReader
{
    /// <summary>Opens <paramref name="path"/>, validates its index and lists its tensors without reading their data.</summary>
    /// <exception cref="ClipGenException">The path is missing or a folder, the format is unknown, legacy or refused, or the file is damaged.</exception>
    public static ICheckpointSource Open(string path) => Open(path, CheckpointLimits.Default);

    /// <summary>As <see cref="Open(string)"/>, within <paramref name="limits"/> (zip expansion, pickle size and objects; docs/limits.md).</summary>
    public static ICheckpointSource Open(string path, CheckpointLimits limits)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(limits);
        if (Directory.Exists(path))
            throw new ClipGenException($"{path}: is a folder; open one checkpoint file in it (e.g. model.safetensors), or a model.safetensors.index.json with OpenShardedSafetensors");
        if (!File.Exists(path))
            throw new ClipGenException($"{path}: checkpoint file not found");

        Span<byte> head = stackalloc byte[9];
        int n;
        using (var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete))
            n = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        head = head[..n];

        if (n >= 4 && head[0] == 'P' && head[1] == 'K' && (head[2] is 3 or 5) && (head[3] is 4 or 6))
            return TorchArchiveReader.Open(path, limits);
        if (n >= 9 && head[8] == '{')
            return SafeTensorsReader.Open(path);
        if (n >= 2 && head[0] == 0x80 && head[1] <= 5)
            throw new ClipGenException($"{path}: a legacy (non-zip, pre-1.6) torch.save file, which ClipGen does not read; re-save it with a modern torch (torch.save(torch.load(f), g)) or convert it to safetensors");
        if (n < 9 && n > 0 && head[0] != 'P')
            return SafeTensorsReader.Open(path); // too short for anything; let the safetensors reader name the truncation
        if (path.EndsWith(".json", StringComparison.OrdinalIgnoreCase) && n > 0 && head[0] == '{')
            throw new ClipGenException($"{path}: a JSON file, not a checkpoint; for a sharded index use CheckpointReader.OpenShardedSafetensors");
        throw new ClipGenException($"{path}: not a recognised checkpoint (expected safetensors, a torch.save zip or a TorchScript archive)");
    }

    /// <summary>
    /// Opens a sharded safetensors checkpoint from its <c>model.safetensors.index.json</c> (<c>{"weight_map": {key: shard file}}</c>).
    /// Shards are resolved next to the index; each key is looked up in the shard the index names.
    /// </summary>
    /// <exception cref="ClipGenException">The index is malformed, a shard is missing or damaged, or a key is not in its shard.</exception>
    public static ICheckpointSource OpenShardedSafetensors(string indexPath)
    {
        ArgumentNullException.ThrowIfNull(indexPath);
        if (!File.Exists(indexPath))
            throw new ClipGenException($"{indexPath}: sharded checkpoint index not found");
        var folder = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(indexPath))!;

        var weightMap = new List<(string Key, string Shard)>();
        var listed = new HashSet<string>(StringComparer.Ordinal);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            using var doc = JsonDocument.Parse(InputFiles.ReadAllBytes(indexPath, IndexMaxBytes, "a sharded checkpoint index"));
            if (doc.RootElement.ValueKind != JsonValueKind.Object
                || !doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new ClipGenException($"{indexPath}: not a sharded safetensors index (no \"weight_map\" object)");
            foreach (var item in map.EnumerateObject())
            {
                if (item.Value.ValueKind != JsonValueKind.String)
                    throw new ClipGenException($"{indexPath}: weight_map entry '{ErrorText.Value(item.Name)}' is not a file name");
                if (!listed.Add(item.Name))
                    throw new ClipGenException($"{indexPath}: weight_map lists tensor '{ErrorText.Value(item.Name)}' twice");
                weightMap.Add((item.Name, item.Value.GetString()!));
            }
            if (doc.RootElement.TryGetProperty("metadata", out var meta) && meta.ValueKind == JsonValueKind.Object)
                foreach (var m in meta.EnumerateObject())
                    metadata[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()! : m.Value.GetRawText();
        }
        catch (JsonException e)
        {
            throw new ClipGenException($"{indexPath}: the sharded index is not valid JSON ({e.Message.ReplaceLineEndings(" ")})");
        }

        var shards = new Dictionary<string, ICheckpointSource>(StringComparer.Ordinal);
        try
        {
            foreach (var shard in weightMap.Select(w => w.Shard).Distinct(StringComparer.Ordinal))
            {
                if (shard.Length == 0 || shard != System.IO.Path.GetFileName(shard) || shard is "." or "..")
                    throw new ClipGenException($"{indexPath}: shard '{shard}' must be a file name in the index's folder");
                var shardPath = System.IO.Path.Combine(folder, shard);
                if (!File.Exists(shardPath))
                    throw new ClipGenException($"{indexPath}: shard '{shard}' is missing (expected at {shardPath})");
                var source = SafeTensorsReader.Open(shardPath);
                shards.Add(shard, source);
            }

            var lookup = shards.ToDictionary(s => s.Key, s => s.Value.Entries.ToDictionary(e => e.Name, StringComparer.Ordinal), StringComparer.Ordinal);
            var entries = new List<TensorEntry>(weightMap.Count);
            foreach (var (key, shard) in weightMap)
            {
                if (!lookup[shard].TryGetValue(key, out var entry))
                    throw new ClipGenException($"{indexPath}: tensor '{key}' is not in shard '{shard}', where the index puts it");
                entries.Add(entry);
            }
            return new ShardedSource(indexPath, [.. shards.Values], entries, metadata);
        }
        catch
        {
            foreach (var s in shards.Values) s.Dispose();
            throw;
        }
    }

    /// <summary>The largest sharded index read (64 MiB; a real one is under 100 KB).</summary>
    const long IndexMaxBytes = 64L << 20;

    sealed class ShardedSource(string path, ICheckpointSource[] shards, IReadOnlyList<TensorEntry> entries, IReadOnlyDictionary<string, string> metadata)
        : ICheckpointSource
    {
        public string Path { get; } = path;
        public string Format => "safetensors-sharded";
        public IReadOnlyList<TensorEntry> Entries { get; } = entries;
        public IReadOnlyDictionary<string, string> Metadata { get; } = metadata;

        public void Dispose()
        {
            foreach (var s in shards) s.Dispose();
        }
    }
}
