using System.IO.Compression;
using System.Text.RegularExpressions;
using static ClipGen.Checkpoints.RestrictedUnpickler;
using static TorchSharp.torch;

namespace ClipGen.Checkpoints;

/// <summary>
/// A PyTorch zip archive: either <c>torch.save</c> output (<c>&lt;folder&gt;/data.pkl</c> + <c>&lt;folder&gt;/data/&lt;key&gt;</c>)
/// or a TorchScript archive (the same plus <c>code/</c> and <c>constants.pkl</c>). <c>data.pkl</c> is read with
/// <see cref="RestrictedUnpickler"/>; tensor bytes are streamed from the storage entries only when asked for.
/// </summary>
internal sealed partial class TorchArchiveReader : ICheckpointSource
{
    /// <summary>TorchScript attributes of OpenAI's released models that are not weights.</summary>
    static readonly string[] OpenAIScalarAttributes = ["input_resolution", "context_length", "vocab_size"];

    readonly ZipArchive _zip;
    readonly string _prefix;
    readonly CheckpointLimits _limits;
    readonly Dictionary<string, string> _metadata = new(StringComparer.Ordinal);
    /// <summary>Per code file: class name → the parameter and buffer names it declares (each file is read and split once).</summary>
    readonly Dictionary<string, Dictionary<string, HashSet<string>>?> _codeFiles = new(StringComparer.Ordinal);
    /// <summary>Storages read by more than one entry when one of them needs more than its own bytes (strided, or inflated from the start).</summary>
    readonly Dictionary<string, SharedStorage> _shared = new(StringComparer.Ordinal);
    bool _disposed;

    public string Path { get; }
    public string Format { get; }
    public IReadOnlyList<TensorEntry> Entries { get; }
    public IReadOnlyDictionary<string, string> Metadata => _metadata;

    TorchArchiveReader(string path, ZipArchive zip, string prefix, bool torchScript, CheckpointLimits limits)
    {
        Path = path;
        _zip = zip;
        _prefix = prefix;
        _limits = limits;
        Format = torchScript ? "torchscript" : "torch-zip";

        var byteOrder = zip.GetEntry(prefix + "byteorder");
        if (byteOrder is not null && ReadText(byteOrder, 64, "the byteorder entry").Trim() == "big")
            throw new ClipGenException($"{path}: the checkpoint was saved big-endian; re-save it on a little-endian machine");

        var pickle = zip.GetEntry(prefix + "data.pkl")!;
        var bytes = ZipEntryStream.ReadAll(path, pickle, limits, limits.MaxPickleBytes, "a checkpoint's pickle (CheckpointLimits.MaxPickleBytes, CLIPGEN_MAX_PICKLE_BYTES)");
        var root = RestrictedUnpickler.Load(bytes, path, torchScript, limits);

        var found = new List<(string Name, PickledTensor Tensor)>();
        if (torchScript)
            CollectScriptModule(root, found);
        else
            CollectStateDict(root, found);
        if (found.Count == 0)
            throw new ClipGenException($"{path}: the {Format} archive holds no tensors");

        if (!torchScript) StripCommonPrefix(found, "module.");
        var names = new HashSet<string>(StringComparer.Ordinal);
        var entries = new List<TensorEntry>(found.Count);
        foreach (var (name, tensor) in found)
        {
            if (!names.Add(name)) throw new ClipGenException($"{path}: tensor '{ErrorText.Value(name)}' appears twice");
            entries.Add(CreateEntry(name, tensor));
        }
        Entries = entries;
        PlanSharedStorages(entries.Cast<Entry>());
    }

    /// <summary>Opens a zip that has a top-level <c>&lt;folder&gt;/data.pkl</c>; throws <see cref="ClipGenException"/> otherwise.</summary>
    public static TorchArchiveReader Open(string path, CheckpointLimits? limits = null)
    {
        limits ??= CheckpointLimits.Default;
        limits.Validate();
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, 4096, FileOptions.RandomAccess);
        ZipArchive? zip = null;
        try
        {
            try
            {
                zip = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: false);
                _ = zip.Entries.Count; // the central directory is read on first use: read it here, where its errors are caught
            }
            catch (Exception e) when (e is InvalidDataException or IOException or NotSupportedException or ArgumentException)
            {
                throw new ClipGenException($"{path}: not a readable zip archive ({e.Message})");
            }

            var pickle = zip.Entries
                .Where(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal) && e.FullName.IndexOf('/') == e.FullName.Length - "/data.pkl".Length)
                .FirstOrDefault();
            if (pickle is null)
                throw new ClipGenException($"{path}: a zip archive but not a PyTorch checkpoint (no <folder>/data.pkl entry)");
            var prefix = pickle.FullName[..^"data.pkl".Length];
            bool torchScript = zip.GetEntry(prefix + "constants.pkl") is not null
                || zip.Entries.Any(e => e.FullName.StartsWith(prefix + "code/", StringComparison.Ordinal));
            return new TorchArchiveReader(path, zip, prefix, torchScript, limits);
        }
        catch
        {
            if (zip is not null) zip.Dispose(); else stream.Dispose();
            throw;
        }
    }

    void CollectStateDict(object? root, List<(string, PickledTensor)> found)
    {
        if (root is not PyDict dict)
            throw new ClipGenException($"{Path}: data.pkl does not hold a state dict (found {Describe(root)}); save model.state_dict()");
        // open_clip training checkpoints: {"epoch": …, "name": …, "state_dict": {…}, "optimizer": …}
        if (dict.TryGet("state_dict", out var inner) && inner is PyDict wrapped)
        {
            foreach (var (key, value) in dict.Items)
                if (key is string k && ScalarText(value) is { } text) _metadata[k] = text;
            dict = wrapped;
        }
        foreach (var (key, value) in dict.Items)
            if (key is string name && value is PickledTensor tensor)
                found.Add((name, tensor));
    }

    void CollectScriptModule(object? root, List<(string, PickledTensor)> found)
    {
        if (root is not ScriptObject module)
            throw new ClipGenException($"{Path}: the TorchScript archive's data.pkl does not hold a module (found {Describe(root)})");

        bool openAIAttributes = false;
        foreach (var attribute in OpenAIScalarAttributes)
        {
            if (!module.Attributes.TryGet(attribute, out var value)) continue;
            openAIAttributes = true;
            var text = value is PickledTensor t ? ReadScalar(attribute, t) : ScalarText(value);
            if (text is not null) _metadata[attribute] = text;
        }
        Walk(module, "", found, isRoot: true, new HashSet<ScriptObject>(ReferenceEqualityComparer.Instance), new HashSet<ScriptObject>(ReferenceEqualityComparer.Instance));

        bool openAILayout = found.Any(f => f.Item1.StartsWith("visual.", StringComparison.Ordinal))
            && found.Any(f => f.Item1.StartsWith("transformer.resblocks.", StringComparison.Ordinal));
        if (openAIAttributes || openAILayout) _metadata["provenance"] = "openai";
    }

    /// <summary>
    /// Collects the tensors below <paramref name="module"/>. A module reachable along two paths (shared, or a hostile DAG whose paths
    /// multiply) is walked once, under the first name found, as <c>named_modules()</c> does; so the walk is linear in the pickle's objects.
    /// </summary>
    void Walk(ScriptObject module, string prefix, List<(string, PickledTensor)> found, bool isRoot, HashSet<ScriptObject> path, HashSet<ScriptObject> visited)
    {
        if (path.Contains(module))
            throw new ClipGenException($"{Path}: the TorchScript module tree contains a cycle at '{ErrorText.Value(prefix.TrimEnd('.'))}'");
        if (!visited.Add(module)) return;
        path.Add(module);
        if (path.Count > _limits.MaxModuleDepth)
            throw new ClipGenException($"{Path}: the TorchScript module tree is nested more than {_limits.MaxModuleDepth} levels deep at '{ErrorText.Value(prefix.TrimEnd('.'))}'");
        var declared = DeclaredTensors(module.Type);
        foreach (var (key, value) in module.Attributes.Items)
        {
            if (key is not string name) continue;
            switch (value)
            {
                case PickledTensor tensor:
                    if (isRoot && OpenAIScalarAttributes.Contains(name)) continue;
                    if (declared is null || declared.Contains(name)) found.Add((prefix + name, tensor));
                    break;
                case ScriptObject child:
                    Walk(child, prefix + name + ".", found, isRoot: false, path, visited);
                    break;
            }
        }
        path.Remove(module);
    }

    /// <summary>
    /// The parameter and buffer names a TorchScript class declares (<c>__parameters__ = [...]</c>, <c>__buffers__ = [...]</c> in
    /// <c>code/</c>), so that plain tensor attributes (not in <c>state_dict()</c>) are left out; null when the class is not found.
    /// </summary>
    HashSet<string>? DeclaredTensors(PyGlobal type)
    {
        var file = _prefix + "code/" + type.Module.Replace('.', '/') + ".py";
        if (!_codeFiles.TryGetValue(file, out var classes))
            _codeFiles[file] = classes = ReadDeclarations(file);
        return classes is not null && classes.TryGetValue(type.Name, out var names) ? names : null;
    }

    /// <summary>Every class of one code file with its <c>__parameters__</c> and <c>__buffers__</c> names; null when the file is absent or too large.</summary>
    Dictionary<string, HashSet<string>>? ReadDeclarations(string file)
    {
        var entry = _zip.GetEntry(file);
        if (entry is null || entry.Length > _limits.MaxCodeFileBytes) return null;
        var classes = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        HashSet<string>? current = null;
        string? currentName = null;
        foreach (var line in ReadText(entry, _limits.MaxCodeFileBytes, "a TorchScript code file").Split('\n'))
        {
            if (line.StartsWith("class ", StringComparison.Ordinal))
            {
                int open = line.IndexOf('(', 6);
                currentName = open > 6 ? line[6..open] : null;
                current = null;
                continue;
            }
            if (currentName is null) continue;
            var trimmed = line.TrimStart();
            if (trimmed.StartsWith("__parameters__ = [", StringComparison.Ordinal) || trimmed.StartsWith("__buffers__ = [", StringComparison.Ordinal))
            {
                if (current is null && !classes.TryGetValue(currentName, out current)) classes[currentName] = current = new HashSet<string>(StringComparer.Ordinal);
                foreach (Match m in QuotedName().Matches(trimmed)) current.Add(m.Groups[1].Value);
            }
        }
        return classes;
    }

    [GeneratedRegex("\"([^\"]*)\"")]
    private static partial Regex QuotedName();

    string? ReadScalar(string name, PickledTensor tensor)
    {
        var entry = CreateEntry(name, tensor);
        if (entry.ElementCount != 1) return null;
        using var t = entry.ToTensor();
        return t.dtype is ScalarType.Float16 or ScalarType.Float32 or ScalarType.Float64 or ScalarType.BFloat16
            ? t.to_type(ScalarType.Float64).item<double>().ToString(System.Globalization.CultureInfo.InvariantCulture)
            : t.to_type(ScalarType.Int64).item<long>().ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    TensorEntry CreateEntry(string name, PickledTensor tensor)
    {
        var storage = tensor.Storage;
        var shown = ErrorText.Value(name);
        var zipEntry = _zip.GetEntry(_prefix + "data/" + storage.Key)
            ?? throw new ClipGenException($"{Path}: tensor '{shown}' refers to storage 'data/{ErrorText.Value(storage.Key)}', which is not in the archive");
        long storageBytes;
        try { storageBytes = checked(storage.ElementCount * storage.DType.Size()); }
        catch (OverflowException) { throw new ClipGenException($"{Path}: tensor '{shown}': storage size {storage.ElementCount} is too large"); }
        if (zipEntry.Length < storageBytes)
            throw new ClipGenException($"{Path}: tensor '{shown}': storage 'data/{ErrorText.Value(storage.Key)}' has {zipEntry.Length} bytes but {storageBytes} are declared (truncated?)");
        ZipEntryStream.CheckExpansion(Path, zipEntry, _limits);

        var size = tensor.Size;
        var stride = tensor.Stride;
        if (stride.Length != size.Length || size.Any(s => s < 0) || stride.Any(s => s < 0) || tensor.StorageOffset < 0)
            throw new ClipGenException($"{Path}: tensor '{shown}' has an invalid view (size {TensorEntry.FormatShape(size)}, stride {TensorEntry.FormatShape(stride)}, offset {tensor.StorageOffset})");
        long count = 1, last = tensor.StorageOffset;
        try
        {
            foreach (var s in size) count = checked(count * s);
            for (int i = 0; i < size.Length; i++) last = checked(last + (size[i] - 1) * stride[i]);
            _ = checked(count * storage.DType.Size());
        }
        catch (OverflowException) { throw new ClipGenException($"{Path}: tensor '{shown}' has an invalid view (overflow)"); }
        if (count > 0 && last >= storage.ElementCount)
            throw new ClipGenException($"{Path}: tensor '{shown}' reads past the end of its storage 'data/{ErrorText.Value(storage.Key)}' ({storage.ElementCount} elements)");

        return new Entry(this, name, storage.DType, size, zipEntry, tensor, count == 0 ? tensor.StorageOffset - 1 : last);
    }

    /// <summary>
    /// A storage read by several entries, when at least one of them needs more than its own bytes (a strided view reads the span
    /// between its first and last element; an entry of a deflated storage inflates everything before it). Such a storage's span is
    /// inflated once, kept until each of its entries has been read, and then dropped, so the work is bounded by the storage's size
    /// rather than by (entries × storage).
    /// </summary>
    sealed class SharedStorage(long first, long last, int users)
    {
        public long First { get; } = first;
        public long Last { get; } = last;
        public int Remaining { get; set; } = users;
        public byte[]? Bytes { get; set; }
    }

    void PlanSharedStorages(IEnumerable<Entry> entries)
    {
        foreach (var group in entries.Where(e => e.ElementCount > 0).GroupBy(e => e.View.Storage.Key, StringComparer.Ordinal))
        {
            var list = group.ToList();
            if (list.Count < 2) continue;
            bool compressed = list[0].ZipEntry.CompressedLength != list[0].ZipEntry.Length;
            if (!compressed && list.All(e => IsContiguous(e.View.Size, e.View.Stride))) continue;
            _shared[group.Key] = new SharedStorage(list.Min(e => e.View.StorageOffset), list.Max(e => e.LastElement), list.Count);
        }
    }

    void Read(Entry entry, Span<byte> destination)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        try { ReadView(entry, destination); }
        catch (Exception e) when (e is IOException or InvalidDataException)
        {
            throw new ClipGenException($"{Path}: tensor '{ErrorText.Value(entry.Name)}': cannot read storage 'data/{ErrorText.Value(entry.View.Storage.Key)}' ({e.Message})", e);
        }
    }

    void ReadView(Entry entry, Span<byte> destination)
    {
        var view = entry.View;
        int elementSize = entry.DType.Size();
        if (_shared.TryGetValue(view.Storage.Key, out var shared))
        {
            shared.Bytes ??= ReadSpan(entry, shared.First, shared.Last);
            Gather(shared.Bytes, view.StorageOffset - shared.First, view.Size, view.Stride, elementSize, destination);
            if (--shared.Remaining <= 0) shared.Bytes = null;
            return;
        }
        if (IsContiguous(view.Size, view.Stride))
        {
            using var stream = ZipEntryStream.Open(Path, entry.ZipEntry, _limits);
            stream.SeekForward(view.StorageOffset * elementSize);
            stream.ReadExactly(destination);
            return;
        }
        // A strided view (rare in state dicts): read the span from its first to its last element, then gather.
        var span = ReadSpan(entry, view.StorageOffset, entry.LastElement);
        Gather(span, 0, view.Size, view.Stride, elementSize, destination);
    }

    /// <summary>Elements <paramref name="first"/>..<paramref name="last"/> of the entry's storage.</summary>
    byte[] ReadSpan(Entry entry, long first, long last)
    {
        int elementSize = entry.DType.Size();
        long bytes = (last - first + 1) * elementSize;
        if (bytes > Array.MaxLength)
            throw new ClipGenException($"{Path}: tensor '{ErrorText.Value(entry.Name)}' is a strided or shared view spanning {bytes:N0} bytes of storage 'data/{ErrorText.Value(entry.View.Storage.Key)}'; spans over 2 GiB are not supported");
        var buffer = new byte[bytes];
        using var stream = ZipEntryStream.Open(Path, entry.ZipEntry, _limits);
        stream.SeekForward(first * elementSize);
        stream.ReadExactly(buffer);
        return buffer;
    }

    /// <summary>Copies the view (<paramref name="offset"/> elements into <paramref name="source"/>) into <paramref name="destination"/> in row-major order.</summary>
    static void Gather(byte[] source, long offset, long[] size, long[] stride, int elementSize, Span<byte> destination)
    {
        int nd = size.Length;
        if (nd == 0 || IsContiguous(size, stride))
        {
            source.AsSpan((int)(offset * elementSize), destination.Length).CopyTo(destination);
            return;
        }
        // The innermost dimension is copied as one run when its stride is 1.
        bool innerRun = stride[nd - 1] == 1;
        int runElements = innerRun ? (int)size[nd - 1] : 1;
        int runBytes = runElements * elementSize;
        int outer = innerRun ? nd - 1 : nd;
        var index = new long[nd];
        long src = offset;
        for (int written = 0; written < destination.Length; written += runBytes)
        {
            source.AsSpan((int)(src * elementSize), runBytes).CopyTo(destination[written..]);
            for (int d = outer - 1; d >= 0; d--)
            {
                index[d]++;
                src += stride[d];
                if (index[d] < size[d]) break;
                src -= stride[d] * size[d];
                index[d] = 0;
            }
        }
    }

    static bool IsContiguous(long[] size, long[] stride)
    {
        long expected = 1;
        for (int i = size.Length - 1; i >= 0; i--)
        {
            if (size[i] != 1 && stride[i] != expected) return false;
            expected *= size[i];
        }
        return true;
    }

    static void StripCommonPrefix(List<(string Name, PickledTensor Tensor)> found, string prefix)
    {
        if (!found.All(f => f.Name.StartsWith(prefix, StringComparison.Ordinal))) return;
        for (int i = 0; i < found.Count; i++) found[i] = (found[i].Name[prefix.Length..], found[i].Tensor);
    }

    static string? ScalarText(object? value) => value switch
    {
        string s => s,
        long n => n.ToString(System.Globalization.CultureInfo.InvariantCulture),
        double d => d.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
        bool b => b ? "true" : "false",
        System.Numerics.BigInteger b => b.ToString(System.Globalization.CultureInfo.InvariantCulture),
        _ => null,
    };

    static string Describe(object? value) => value switch
    {
        null => "None",
        ScriptObject o => o.Type.ToString(),
        PickledTensor => "a single tensor",
        object?[] => "a tuple",
        List<object?> => "a list",
        _ => value.GetType().Name,
    };

    string ReadText(ZipArchiveEntry entry, long maxBytes, string what) =>
        System.Text.Encoding.UTF8.GetString(ZipEntryStream.ReadAll(Path, entry, _limits, maxBytes, what));

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _zip.Dispose();
    }

    sealed class Entry(TorchArchiveReader owner, string name, TensorDType dtype, long[] shape, ZipArchiveEntry zipEntry, PickledTensor view, long lastElement)
        : TensorEntry(owner.Path, name, dtype, shape)
    {
        public ZipArchiveEntry ZipEntry { get; } = zipEntry;
        public PickledTensor View { get; } = view;
        /// <summary>The index in the storage of the view's last element.</summary>
        public long LastElement { get; } = lastElement;

        private protected override void ReadContiguous(Span<byte> destination) => owner.Read(this, destination);
    }
}
