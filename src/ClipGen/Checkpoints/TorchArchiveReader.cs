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

    const long MaxPickleBytes = 512L * 1024 * 1024;

    readonly ZipArchive _zip;
    readonly string _prefix;
    readonly Dictionary<string, string> _metadata = new(StringComparer.Ordinal);
    readonly Dictionary<string, HashSet<string>?> _declaredTensors = new(StringComparer.Ordinal);
    bool _disposed;

    public string Path { get; }
    public string Format { get; }
    public IReadOnlyList<TensorEntry> Entries { get; }
    public IReadOnlyDictionary<string, string> Metadata => _metadata;

    TorchArchiveReader(string path, ZipArchive zip, string prefix, bool torchScript)
    {
        Path = path;
        _zip = zip;
        _prefix = prefix;
        Format = torchScript ? "torchscript" : "torch-zip";

        var byteOrder = zip.GetEntry(prefix + "byteorder");
        if (byteOrder is not null && ReadText(byteOrder).Trim() == "big")
            throw new ClipGenException($"{path}: the checkpoint was saved big-endian; re-save it on a little-endian machine");

        var pickle = zip.GetEntry(prefix + "data.pkl")!;
        if (pickle.Length > MaxPickleBytes)
            throw new ClipGenException($"{path}: data.pkl is {pickle.Length} bytes, too large for a checkpoint index");
        var bytes = ReadAll(pickle);
        var root = RestrictedUnpickler.Load(bytes, path, torchScript);

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
            if (!names.Add(name)) throw new ClipGenException($"{path}: tensor '{name}' appears twice");
            entries.Add(CreateEntry(name, tensor));
        }
        Entries = entries;
    }

    /// <summary>Opens a zip that has a top-level <c>&lt;folder&gt;/data.pkl</c>; throws <see cref="ClipGenException"/> otherwise.</summary>
    public static TorchArchiveReader Open(string path)
    {
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, 4096, FileOptions.RandomAccess);
        ZipArchive? zip = null;
        try
        {
            try { zip = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: false); }
            catch (InvalidDataException e) { throw new ClipGenException($"{path}: not a readable zip archive ({e.Message.ReplaceLineEndings(" ")})"); }

            var pickle = zip.Entries
                .Where(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal) && e.FullName.IndexOf('/') == e.FullName.Length - "/data.pkl".Length)
                .FirstOrDefault();
            if (pickle is null)
                throw new ClipGenException($"{path}: a zip archive but not a PyTorch checkpoint (no <folder>/data.pkl entry)");
            var prefix = pickle.FullName[..^"data.pkl".Length];
            bool torchScript = zip.GetEntry(prefix + "constants.pkl") is not null
                || zip.Entries.Any(e => e.FullName.StartsWith(prefix + "code/", StringComparison.Ordinal));
            return new TorchArchiveReader(path, zip, prefix, torchScript);
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
        Walk(module, "", found, isRoot: true, new HashSet<ScriptObject>(ReferenceEqualityComparer.Instance));

        bool openAILayout = found.Any(f => f.Item1.StartsWith("visual.", StringComparison.Ordinal))
            && found.Any(f => f.Item1.StartsWith("transformer.resblocks.", StringComparison.Ordinal));
        if (openAIAttributes || openAILayout) _metadata["provenance"] = "openai";
    }

    void Walk(ScriptObject module, string prefix, List<(string, PickledTensor)> found, bool isRoot, HashSet<ScriptObject> path)
    {
        if (!path.Add(module))
            throw new ClipGenException($"{Path}: the TorchScript module tree contains a cycle at '{prefix.TrimEnd('.')}'");
        if (path.Count > 256)
            throw new ClipGenException($"{Path}: the TorchScript module tree is nested more than 256 levels deep at '{prefix.TrimEnd('.')}'");
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
                    Walk(child, prefix + name + ".", found, isRoot: false, path);
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
        var key = type.ToString();
        if (_declaredTensors.TryGetValue(key, out var cached)) return cached;
        HashSet<string>? result = null;
        var entry = _zip.GetEntry(_prefix + "code/" + type.Module.Replace('.', '/') + ".py");
        if (entry is not null && entry.Length < 16 * 1024 * 1024)
        {
            bool inClass = false;
            foreach (var line in ReadText(entry).Split('\n'))
            {
                if (line.StartsWith("class ", StringComparison.Ordinal))
                {
                    inClass = line.StartsWith("class " + type.Name + "(", StringComparison.Ordinal);
                    continue;
                }
                if (!inClass) continue;
                var trimmed = line.TrimStart();
                if (trimmed.StartsWith("__parameters__ = [", StringComparison.Ordinal) || trimmed.StartsWith("__buffers__ = [", StringComparison.Ordinal))
                {
                    result ??= new HashSet<string>(StringComparer.Ordinal);
                    foreach (Match m in QuotedName().Matches(trimmed)) result.Add(m.Groups[1].Value);
                }
            }
        }
        _declaredTensors[key] = result;
        return result;
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
        var zipEntry = _zip.GetEntry(_prefix + "data/" + storage.Key)
            ?? throw new ClipGenException($"{Path}: tensor '{name}' refers to storage 'data/{storage.Key}', which is not in the archive");
        long storageBytes;
        try { storageBytes = checked(storage.ElementCount * storage.DType.Size()); }
        catch (OverflowException) { throw new ClipGenException($"{Path}: tensor '{name}': storage size {storage.ElementCount} is too large"); }
        if (zipEntry.Length < storageBytes)
            throw new ClipGenException($"{Path}: tensor '{name}': storage 'data/{storage.Key}' has {zipEntry.Length} bytes but {storageBytes} are declared (truncated?)");

        var size = tensor.Size;
        var stride = tensor.Stride;
        if (stride.Length != size.Length || size.Any(s => s < 0) || stride.Any(s => s < 0) || tensor.StorageOffset < 0)
            throw new ClipGenException($"{Path}: tensor '{name}' has an invalid view (size {TensorEntry.FormatShape(size)}, stride {TensorEntry.FormatShape(stride)}, offset {tensor.StorageOffset})");
        long count = 1, last = tensor.StorageOffset;
        try
        {
            foreach (var s in size) count = checked(count * s);
            for (int i = 0; i < size.Length; i++) last = checked(last + (size[i] - 1) * stride[i]);
        }
        catch (OverflowException) { throw new ClipGenException($"{Path}: tensor '{name}' has an invalid view (overflow)"); }
        if (count > 0 && last >= storage.ElementCount)
            throw new ClipGenException($"{Path}: tensor '{name}' reads past the end of its storage 'data/{storage.Key}' ({storage.ElementCount} elements)");

        return new Entry(this, name, storage.DType, size, zipEntry, tensor);
    }

    void Read(Entry entry, Span<byte> destination)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        try { ReadView(entry, destination); }
        catch (Exception e) when (e is IOException or InvalidDataException)
        {
            throw new ClipGenException($"{Path}: tensor '{entry.Name}': cannot read storage 'data/{entry.View.Storage.Key}' ({e.Message.ReplaceLineEndings(" ")})", e);
        }
    }

    void ReadView(Entry entry, Span<byte> destination)
    {
        var view = entry.View;
        int elementSize = entry.DType.Size();
        if (IsContiguous(view.Size, view.Stride))
        {
            using var stream = entry.ZipEntry.Open();
            Skip(stream, view.StorageOffset * elementSize);
            stream.ReadExactly(destination);
            return;
        }
        // A strided view (rare in state dicts): read the whole storage, let torch gather the view.
        if (view.Storage.ElementCount * elementSize > int.MaxValue)
            throw new ClipGenException($"{Path}: tensor '{entry.Name}' is a strided view of a storage over 2 GiB, which is not supported");
        using var storage = empty([view.Storage.ElementCount], entry.DType.ToScalarType());
        using (var stream = entry.ZipEntry.Open())
            stream.ReadExactly(storage.bytes);
        using var strided = storage.as_strided(view.Size, view.Stride, view.StorageOffset);
        using var contiguous = strided.contiguous();
        contiguous.bytes.CopyTo(destination);
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

    static void Skip(Stream stream, long count)
    {
        if (count == 0) return;
        if (stream.CanSeek) { stream.Seek(count, SeekOrigin.Current); return; }
        var scratch = new byte[(int)Math.Min(count, 1 << 20)];
        while (count > 0)
        {
            int n = stream.Read(scratch, 0, (int)Math.Min(count, scratch.Length));
            if (n <= 0) throw new EndOfStreamException();
            count -= n;
        }
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

    static byte[] ReadAll(ZipArchiveEntry entry)
    {
        var bytes = new byte[entry.Length];
        using var stream = entry.Open();
        stream.ReadExactly(bytes);
        return bytes;
    }

    static string ReadText(ZipArchiveEntry entry) => System.Text.Encoding.UTF8.GetString(ReadAll(entry));

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _zip.Dispose();
    }

    sealed class Entry(TorchArchiveReader owner, string name, TensorDType dtype, long[] shape, ZipArchiveEntry zipEntry, PickledTensor view)
        : TensorEntry(owner.Path, name, dtype, shape)
    {
        public ZipArchiveEntry ZipEntry { get; } = zipEntry;
        public PickledTensor View { get; } = view;

        private protected override void ReadContiguous(Span<byte> destination) => owner.Read(this, destination);
    }
}
