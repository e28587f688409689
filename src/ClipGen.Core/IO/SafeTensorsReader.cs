using System.IO.MemoryMappedFiles;
using System.Text.Json;
using ClipGen.Checkpoints;

namespace ClipGen.IO;

/// <summary>
/// A memory-mapped safetensors file: an 8-byte little-endian header length, a JSON header, then the raw tensor bytes.
/// The header is validated strictly when the file is opened; tensor bytes are read only on demand, straight from the mapping.
/// </summary>
internal sealed unsafe class SafeTensorsReader : ICheckpointSource
{
    /// <summary>The largest header accepted (the safetensors reference implementation's limit).</summary>
    const long MaxHeaderBytes = 100L * 1024 * 1024;

    readonly MemoryMappedFile _map;
    readonly MemoryMappedViewAccessor _view;
    readonly FileStream _stream;
    readonly Microsoft.Win32.SafeHandles.SafeFileHandle _handle;
    byte* _base;
    readonly long _dataStart;
    readonly long _dataLength;

    public string Path { get; }
    public string Format => "safetensors";
    public IReadOnlyList<TensorEntry> Entries { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }

    SafeTensorsReader(string path, FileStream stream, MemoryMappedFile map, MemoryMappedViewAccessor view, byte* pointer, long dataStart, long dataLength, string headerJson)
    {
        Path = path;
        _stream = stream;
        _handle = stream.SafeFileHandle;
        _map = map;
        _view = view;
        _base = pointer;
        _dataStart = dataStart;
        _dataLength = dataLength;
        (Entries, Metadata) = ParseHeader(headerJson);
    }

    /// <summary>Opens and validates <paramref name="path"/>; throws <see cref="ClipGenException"/> naming the file and tensor at fault.</summary>
    public static SafeTensorsReader Open(string path)
    {
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, 1, FileOptions.RandomAccess);
        MemoryMappedFile? map = null;
        MemoryMappedViewAccessor? view = null;
        bool acquired = false;
        try
        {
            long length = stream.Length;
            if (length < 8)
                throw Fail(path, $"truncated: the file is {length} bytes, too short for the 8-byte header length");
            Span<byte> prefix = stackalloc byte[8];
            stream.ReadExactly(prefix);
            ulong headerLength = BitConverter.ToUInt64(prefix);
            if (headerLength > (ulong)(length - 8))
                throw Fail(path, $"the header claims {headerLength} bytes but only {length - 8} follow the length field (truncated or not safetensors)");
            if (headerLength > MaxHeaderBytes)
                throw Fail(path, $"the header is {headerLength} bytes, over the {MaxHeaderBytes}-byte limit");
            if (headerLength < 2)
                throw Fail(path, $"the header is {headerLength} bytes, too short for a JSON object");

            map = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: true);
            view = map.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
            byte* pointer = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
            acquired = true;
            pointer += view.PointerOffset;

            var headerBytes = new ReadOnlySpan<byte>(pointer + 8, checked((int)headerLength));
            string json;
            try { json = new System.Text.UTF8Encoding(false, true).GetString(headerBytes); }
            catch (System.Text.DecoderFallbackException) { throw Fail(path, "the header is not valid UTF-8"); }

            long dataStart = 8 + (long)headerLength;
            return new SafeTensorsReader(path, stream, map, view, pointer, dataStart, length - dataStart, json);
        }
        catch
        {
            if (acquired) view!.SafeMemoryMappedViewHandle.ReleasePointer();
            view?.Dispose();
            map?.Dispose();
            stream.Dispose();
            throw;
        }
    }

    (IReadOnlyList<TensorEntry>, IReadOnlyDictionary<string, string>) ParseHeader(string json)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json); }
        catch (JsonException e) { throw Fail(Path, $"the header is not valid JSON ({OneLine(e.Message)})"); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw Fail(Path, "the header is not a JSON object");
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var entries = new List<Entry>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in doc.RootElement.EnumerateObject())
            {
                if (!seen.Add(property.Name))
                    throw Fail(Path, $"tensor '{property.Name}' appears twice in the header");
                if (property.Name == "__metadata__")
                {
                    if (property.Value.ValueKind != JsonValueKind.Object)
                        throw Fail(Path, "__metadata__ is not a JSON object");
                    foreach (var m in property.Value.EnumerateObject())
                        metadata[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()! : m.Value.GetRawText();
                    continue;
                }
                entries.Add(ParseEntry(property.Name, property.Value));
            }

            // No two tensors may share bytes.
            var byOffset = entries.OrderBy(e => e.Begin).ThenBy(e => e.End).ToList();
            for (int i = 1; i < byOffset.Count; i++)
            {
                var (previous, current) = (byOffset[i - 1], byOffset[i]);
                if (current.Begin < previous.End)
                    throw Fail(Path, $"tensor '{current.Name}' (data_offsets [{current.Begin},{current.End}]) overlaps tensor '{previous.Name}' ([{previous.Begin},{previous.End}])");
            }
            return (entries, metadata);
        }
    }

    Entry ParseEntry(string name, JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw Fail(Path, $"tensor '{name}': header entry is not a JSON object");
        if (!value.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw Fail(Path, $"tensor '{name}': missing or non-string \"dtype\"");
        var dtypeText = dtypeElement.GetString()!;
        if (!TensorDTypes.TryParseSafeTensors(dtypeText, out var dtype))
            throw Fail(Path, $"tensor '{name}' has unknown or unsupported dtype '{dtypeText}' (expected F32, F16, BF16, F64, I64, I32, I16, I8, U8 or BOOL)");

        if (!value.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
            throw Fail(Path, $"tensor '{name}': missing or non-array \"shape\"");
        var shape = new long[shapeElement.GetArrayLength()];
        int i = 0;
        foreach (var d in shapeElement.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out var n) || n < 0)
                throw Fail(Path, $"tensor '{name}': shape {shapeElement.GetRawText()} is not a list of non-negative integers");
            shape[i++] = n;
        }

        if (!value.TryGetProperty("data_offsets", out var offsets) || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2
            || offsets[0].ValueKind != JsonValueKind.Number || offsets[1].ValueKind != JsonValueKind.Number
            || !offsets[0].TryGetInt64(out var begin) || !offsets[1].TryGetInt64(out var end))
            throw Fail(Path, $"tensor '{name}': \"data_offsets\" must be [begin, end] as two whole numbers, not {Shorten(offsets)}");
        if (begin < 0 || end < begin)
            throw Fail(Path, $"tensor '{name}': data_offsets [{begin},{end}] are not an ordered pair of non-negative offsets");
        if (end > _dataLength)
            throw Fail(Path, $"tensor '{name}': data_offsets [{begin},{end}] go beyond the {_dataLength} data bytes in the file (truncated?)");

        long expected;
        try
        {
            long count = 1;
            foreach (var d in shape) count = checked(count * d);
            expected = checked(count * dtype.Size());
        }
        catch (OverflowException) { throw Fail(Path, $"tensor '{name}': shape {TensorEntry.FormatShape(shape)} is too large"); }
        if (expected != end - begin)
            throw Fail(Path, $"tensor '{name}': shape {TensorEntry.FormatShape(shape)} of {dtypeText} needs {expected} bytes but data_offsets [{begin},{end}] span {end - begin}");

        return new Entry(this, name, dtype, shape, begin, end);
    }

    void Read(Entry entry, Span<byte> destination)
    {
        if (_base == null) throw new ObjectDisposedException(Path, $"the checkpoint {Path} was disposed");
        // Positioned reads straight into the destination: mapped pages would count in the process's RSS
        // on top of the model's own memory (the mapping is used only for the header).
        long offset = _dataStart + entry.Begin;
        while (destination.Length > 0)
        {
            int n = RandomAccess.Read(_handle, destination, offset);
            if (n <= 0) throw new ClipGenException($"{Path}: tensor '{entry.Name}': the file ended early (truncated while open?)");
            destination = destination[n..];
            offset += n;
        }
    }

    public void Dispose()
    {
        if (_base == null) return;
        _base = null;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
        _stream.Dispose();
    }

    static ClipGenException Fail(string path, string message) => new($"{path}: not a valid safetensors file: {message}");

    static string OneLine(string s) => s.ReplaceLineEndings(" ");

    static string Shorten(JsonElement e) => e.ValueKind == JsonValueKind.Undefined ? "missing" : ErrorText.Value(e.GetRawText());

    sealed class Entry(SafeTensorsReader owner, string name, TensorDType dtype, long[] shape, long begin, long end)
        : TensorEntry(owner.Path, name, dtype, shape)
    {
        public long Begin { get; } = begin;
        public long End { get; } = end;

        private protected override void ReadContiguous(Span<byte> destination) => owner.Read(this, destination);
    }
}
