using System.Formats.Tar;
using System.Text;

namespace ClipGen.Datasets;

/// <summary>
/// One WebDataset sample: the files of a tar shard that share a key. As in <c>webdataset</c>'s
/// <c>base_plus_ext</c>, the key is the member's path up to the first dot of its file name and the extension is the
/// rest, lower-cased (<c>a/b/000123.seg.png</c> → key <c>a/b/000123</c>, extension <c>seg.png</c>).
/// </summary>
public sealed class WebDatasetSample
{
    /// <summary>Image extensions looked for, in this order.</summary>
    public static IReadOnlyList<string> ImageExtensions { get; } = ["jpg", "jpeg", "png", "webp"];

    public WebDatasetSample(string shard, string key, long offset, IReadOnlyDictionary<string, byte[]> files,
        IReadOnlyDictionary<string, (long Offset, long Length)>? members = null)
    {
        Shard = shard; Key = key; Offset = offset; Files = files;
        Members = members ?? new Dictionary<string, (long, long)>();
    }

    /// <summary>Where each member's data lies in the shard (byte offset and length), by extension, loaded or not.</summary>
    public IReadOnlyDictionary<string, (long Offset, long Length)> Members { get; }

    /// <summary>The shard's path as given.</summary>
    public string Shard { get; }
    public string Key { get; }
    /// <summary>Byte offset of the sample's first member header in the shard.</summary>
    public long Offset { get; }
    /// <summary>The members' contents by extension.</summary>
    public IReadOnlyDictionary<string, byte[]> Files { get; }

    /// <summary>The first image member (jpg, jpeg, png, webp), or null.</summary>
    public (string Extension, byte[] Data)? Image
    {
        get
        {
            foreach (var ext in ImageExtensions)
                if (Files.TryGetValue(ext, out var data)) return (ext, data);
            return null;
        }
    }

    /// <summary>The <c>txt</c> member as UTF-8 text, trimmed, or null.</summary>
    public string? Caption => Files.TryGetValue("txt", out var data) ? Encoding.UTF8.GetString(data).Trim() : null;

    /// <summary>The <c>json</c> member as text, or null.</summary>
    public string? Json => Files.TryGetValue("json", out var data) ? Encoding.UTF8.GetString(data) : null;
}

/// <summary>A problem with one sample of a shard (it is skipped; the shard goes on).</summary>
public sealed record WebDatasetProblem(string Shard, string Key, long Offset, string Reason)
{
    public override string ToString() => $"{Shard}: sample '{Key}' at byte {Offset}: {Reason}";
}

/// <summary>A shard that cannot be read on: truncated or corrupt. Names the shard and the byte offset.</summary>
public sealed class WebDatasetShardException(string shard, long offset, string reason, Exception? inner = null)
    : ClipGenException($"{shard}: {reason} at byte {offset}", inner ?? new InvalidDataException(reason))
{
    public string Shard { get; } = shard;
    public long Offset { get; } = offset;
}

/// <summary>
/// Reads WebDataset tar shards as streams (System.Formats.Tar; nothing is extracted to disk). Consecutive members with
/// the same key form a sample; directories, links and <c>__…__</c> metadata members are ignored. A member larger than
/// <see cref="MaxMemberBytes"/> or a repeated extension makes its sample a <see cref="WebDatasetProblem"/>. A damaged
/// shard ends with a <see cref="WebDatasetShardException"/> after the samples before the damage.
/// </summary>
public static class WebDatasetReader
{
    /// <summary>Largest member read into memory (256 MiB; an image or caption is far smaller).</summary>
    public static long MaxMemberBytes { get; set; } = 256L << 20;

    /// <summary>
    /// The samples of the shard at <paramref name="path"/>. <paramref name="load"/> picks the extensions whose bytes are
    /// kept in <see cref="WebDatasetSample.Files"/> (all by default); every member's place is in <see cref="WebDatasetSample.Members"/>.
    /// </summary>
    public static IEnumerable<WebDatasetSample> Read(string path, Action<WebDatasetProblem>? onProblem = null, Func<string, bool>? load = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        FileStream stream;
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists) throw new ClipGenException($"{path}: shard not found");
            if ((info.Attributes & FileAttributes.Directory) != 0) throw new ClipGenException($"{path}: is a folder, not a tar shard");
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ClipGenException($"{path}: cannot open the shard ({e.Message})", e);
        }
        return ReadOwned(stream, path, onProblem, load);
    }

    static IEnumerable<WebDatasetSample> ReadOwned(Stream stream, string shard, Action<WebDatasetProblem>? onProblem, Func<string, bool>? load)
    {
        using (stream)
            foreach (var s in Read(stream, shard, onProblem, load)) yield return s;
    }

    /// <summary>The samples of a tar stream; <paramref name="shard"/> names it in errors. The stream is read once, forward.</summary>
    public static IEnumerable<WebDatasetSample> Read(Stream stream, string shard, Action<WebDatasetProblem>? onProblem = null, Func<string, bool>? load = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var counting = new CountingStream(stream);
        using var reader = new TarReader(counting, leaveOpen: true);
        string? key = null;
        long sampleOffset = 0;
        Dictionary<string, byte[]>? files = null;
        Dictionary<string, (long, long)>? members = null;
        string? problem = null;
        while (true)
        {
            long headerOffset = (counting.Position + 511) / 512 * 512; // members are padded to 512-byte blocks
            TarEntry? entry;
            Exception? damage = null;
            try { entry = reader.GetNextEntry(copyData: false); }
            catch (Exception e) when (IsDamage(e)) { entry = null; damage = e; }
            if (damage is not null)
            {
                // Every member of the pending sample was read whole: it is returned before the error.
                if (key is not null) { var s = Finish(shard, key, sampleOffset, files!, members!, problem, onProblem); if (s is not null) yield return s; }
                throw new WebDatasetShardException(shard, headerOffset, Describe(damage), damage);
            }
            if (entry is null) break;
            if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile)) continue;
            var name = entry.Name.Replace('\\', '/');
            bool member = !IsMeta(name) & SplitKey(name, out var k, out var ext);
            if (member && k != key)
            {
                // A new key: the pending sample is complete.
                if (key is not null) { var s = Finish(shard, key, sampleOffset, files!, members!, problem, onProblem); if (s is not null) yield return s; }
                key = k; sampleOffset = headerOffset; problem = null;
                files = new Dictionary<string, byte[]>(StringComparer.Ordinal);
                members = new Dictionary<string, (long, long)>(StringComparer.Ordinal);
            }
            long dataOffset = counting.Position; // the reader has consumed the member's header blocks
            bool keep = member && (load is null || load(ext));
            byte[]? data;
            try { data = keep ? ReadMember(entry, shard, headerOffset) : Skip(entry); }
            catch (Exception e) when (IsDamage(e) && e is not WebDatasetShardException)
            {
                throw new WebDatasetShardException(shard, headerOffset, Describe(e), e);
            }
            if (!member) continue;
            if (!members!.TryAdd(ext, (dataOffset, entry.Length))) { problem ??= $"two members with the extension '{ext}'"; continue; }
            if (!keep) continue;
            if (data is null) { problem ??= $"member '{name}' is larger than {MaxMemberBytes:N0} bytes"; continue; }
            files!.Add(ext, data);
        }
        if (key is not null) { var s = Finish(shard, key, sampleOffset, files!, members!, problem, onProblem); if (s is not null) yield return s; }
    }

    static bool IsDamage(Exception e) => e is InvalidDataException or EndOfStreamException or FormatException or IOException or ArgumentException or OverflowException;

    static string Describe(Exception e) => e is EndOfStreamException ? "truncated tar (the archive ends inside a member)" : $"corrupt tar ({e.Message.TrimEnd('.')})";

    static WebDatasetSample? Finish(string shard, string key, long offset, Dictionary<string, byte[]> files, Dictionary<string, (long, long)> members,
        string? problem, Action<WebDatasetProblem>? onProblem)
    {
        if (problem is null) return new WebDatasetSample(shard, key, offset, files, members);
        onProblem?.Invoke(new WebDatasetProblem(shard, key, offset, problem));
        return null;
    }

    /// <summary>Reads past a member's data without keeping it (so that truncation is still found).</summary>
    static byte[]? Skip(TarEntry entry)
    {
        long read = 0;
        if (entry.DataStream is { } data)
        {
            var buffer = new byte[81920];
            int n;
            while ((n = data.Read(buffer)) > 0) read += n;
        }
        if (read != entry.Length) throw new EndOfStreamException();
        return [];
    }

    /// <summary>The member's bytes, or null (and its data skipped) when it is over the limit.</summary>
    static byte[]? ReadMember(TarEntry entry, string shard, long offset)
    {
        long length = entry.Length;
        var data = entry.DataStream;
        if (length > MaxMemberBytes)
        {
            data?.CopyTo(Stream.Null);
            return null;
        }
        var buffer = new byte[length];
        if (length > 0)
        {
            if (data is null) throw new WebDatasetShardException(shard, offset, $"member '{entry.Name}' has no data");
            data.ReadExactly(buffer);
        }
        return buffer;
    }

    /// <summary><c>__key__</c>-style members (<c>__index__</c> and the like) that webdataset skips.</summary>
    static bool IsMeta(string name)
    {
        var file = name[(name.LastIndexOf('/') + 1)..];
        return file.StartsWith("__", StringComparison.Ordinal) && (file.EndsWith("__", StringComparison.Ordinal) || file.Contains("__.", StringComparison.Ordinal));
    }

    /// <summary>webdataset's key and extension: the path up to the first dot of the file name, and the rest (lower case).</summary>
    public static bool SplitKey(string name, out string key, out string extension)
    {
        int slash = name.LastIndexOf('/');
        int dot = name.IndexOf('.', slash + 1);
        if (dot <= slash + 1 || dot == name.Length - 1) { key = extension = ""; return false; }
        key = name[..dot];
        extension = name[(dot + 1)..].ToLowerInvariant();
        return true;
    }

    /// <summary>A forward-only view of a stream that counts the bytes read (the tar reader then never seeks).</summary>
    sealed class CountingStream(Stream inner) : Stream
    {
        long _position;
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => _position; set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
        public override int Read(Span<byte> buffer)
        {
            int n = inner.Read(buffer);
            _position += n;
            return n;
        }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
