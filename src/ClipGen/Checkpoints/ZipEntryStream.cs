using System.IO.Compression;
using System.IO.Hashing;

namespace ClipGen.Checkpoints;

/// <summary>
/// Reads one zip entry forward, for the checkpoint readers: the declared size is held to <see cref="CheckpointLimits.MaxExpansionRatio"/>
/// before anything is inflated, the CRC-32 is computed as the bytes stream by and checked when the last declared byte has been read
/// (no extra read: an entry that is only partly read is not checked), and an entry that ends early, fails its CRC or cannot be inflated
/// is a <see cref="ClipGenException"/> that names the archive and the entry.
/// </summary>
internal sealed class ZipEntryStream : Stream
{
    readonly Stream _inner;
    readonly string _archive;
    readonly ZipArchiveEntry _entry;
    readonly Crc32 _crc = new();
    long _position;
    bool _hashing = true;

    ZipEntryStream(Stream inner, string archive, ZipArchiveEntry entry)
    {
        _inner = inner;
        _archive = archive;
        _entry = entry;
    }

    /// <summary>Checks the entry's declared size against its compressed size, then opens it.</summary>
    public static ZipEntryStream Open(string archive, ZipArchiveEntry entry, CheckpointLimits limits)
    {
        CheckExpansion(archive, entry, limits);
        try { return new ZipEntryStream(entry.Open(), archive, entry); }
        catch (Exception e) when (e is InvalidDataException or NotSupportedException or IOException)
        {
            throw new ClipGenException($"{archive}: cannot open zip entry '{ErrorText.Value(entry.FullName)}' ({e.Message})", e);
        }
    }

    /// <summary>Reads a whole entry of at most <paramref name="maxBytes"/> bytes (<paramref name="what"/> names the limit).</summary>
    public static byte[] ReadAll(string archive, ZipArchiveEntry entry, CheckpointLimits limits, long maxBytes, string what)
    {
        CheckExpansion(archive, entry, limits);
        if (entry.Length > maxBytes)
            throw new ClipGenException($"{archive}: zip entry '{ErrorText.Value(entry.FullName)}' is {entry.Length:N0} bytes, over the {maxBytes:N0} bytes allowed for {what} (docs/limits.md)");
        var bytes = new byte[entry.Length];
        using var stream = Open(archive, entry, limits);
        stream.ReadExactly(bytes);
        return bytes;
    }

    /// <summary>A declared size more than <see cref="CheckpointLimits.MaxExpansionRatio"/> times the compressed size is refused (a zip bomb).</summary>
    public static void CheckExpansion(string archive, ZipArchiveEntry entry, CheckpointLimits limits)
    {
        long length = entry.Length, compressed = entry.CompressedLength;
        if (length <= limits.ExpansionCheckedAbove) return;
        if (length / Math.Max(1, compressed) >= limits.MaxExpansionRatio)
            throw new ClipGenException($"{archive}: zip entry '{ErrorText.Value(entry.FullName)}' expands from {compressed:N0} to {length:N0} bytes, more than "
                + $"{limits.MaxExpansionRatio} times (a zip bomb? checkpoints are stored or barely compressed; CheckpointLimits.MaxExpansionRatio or CLIPGEN_MAX_ZIP_RATIO raises the limit)");
    }

    /// <summary>The entry's name in the archive.</summary>
    public string EntryName => _entry.FullName;

    /// <summary>Skips <paramref name="count"/> bytes by reading them (so that they are hashed).</summary>
    public void Skip(long count)
    {
        if (count <= 0) return;
        var scratch = new byte[(int)Math.Min(count, 1 << 20)];
        while (count > 0)
        {
            int n = Read(scratch, 0, (int)Math.Min(count, scratch.Length));
            if (n <= 0) throw Truncated();
            count -= n;
        }
    }

    public override int Read(Span<byte> buffer)
    {
        long left = _entry.Length - _position;
        if (left <= 0) return 0;
        if (buffer.Length > left) buffer = buffer[..(int)left];
        int n;
        try { n = _inner.Read(buffer); }
        catch (Exception e) when (e is InvalidDataException or IOException)
        {
            throw new ClipGenException($"{_archive}: zip entry '{ErrorText.Value(_entry.FullName)}' is damaged after {_position:N0} of its {_entry.Length:N0} bytes ({e.Message})", e);
        }
        if (n <= 0) throw Truncated();
        if (_hashing) _crc.Append(buffer[..n]);
        _position += n;
        if (_position == _entry.Length && _hashing)
        {
            uint actual = _crc.GetCurrentHashAsUInt32();
            if (actual != _entry.Crc32)
                throw new ClipGenException($"{_archive}: zip entry '{ErrorText.Value(_entry.FullName)}' fails its CRC-32 check (stored {_entry.Crc32:x8}, computed {actual:x8}): the file is damaged");
        }
        return n;
    }

    ClipGenException Truncated() =>
        new($"{_archive}: zip entry '{ErrorText.Value(_entry.FullName)}' ends after {_position:N0} of the {_entry.Length:N0} bytes it declares (the file is truncated or damaged)");

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => _entry.Length;
    public override long Position { get => _position; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    /// <summary>Moves forward by seeking the underlying stream when it can (stored entries); the CRC is then not checked.</summary>
    public void SeekForward(long count)
    {
        if (count <= 0) return;
        if (_inner.CanSeek && _position + count <= _entry.Length)
        {
            try { _inner.Seek(count, SeekOrigin.Current); }
            catch (IOException e) { throw new ClipGenException($"{_archive}: zip entry '{ErrorText.Value(_entry.FullName)}' cannot be read ({e.Message})", e); }
            _position += count;
            _hashing = false;
            return;
        }
        Skip(count);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _inner.Dispose();
        base.Dispose(disposing);
    }
}
