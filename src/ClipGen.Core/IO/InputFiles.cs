using System.Runtime.InteropServices;

namespace ClipGen.IO;

/// <summary>
/// Reads input files the safe way: only regular files (a FIFO would block the read forever, a device such as <c>/dev/zero</c>
/// never ends; a symbolic link is followed to what it names), and never more than a stated number of bytes.
/// </summary>
internal static class InputFiles
{
    /// <summary>Throws a <see cref="ClipGenException"/> naming <paramref name="path"/> unless it is (a link to) an existing regular file.</summary>
    public static void RequireRegularFile(string path, string what)
    {
        if (Directory.Exists(path)) throw new ClipGenException($"{path}: is a folder, not {what}");
        if (!File.Exists(path)) throw new ClipGenException($"{path}: file not found");
        if (FileType(path) is { } type && type != RegularFile)
            throw new ClipGenException($"{path}: not a regular file ({Describe(type)}); only regular files are read as {what}");
    }

    /// <summary>The file's bytes, after <see cref="RequireRegularFile"/>; a file longer than <paramref name="maxBytes"/> is refused without reading it all.</summary>
    public static byte[] ReadAllBytes(string path, long maxBytes, string what)
    {
        RequireRegularFile(path, what);
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, 1, FileOptions.SequentialScan);
            if (stream.Length > maxBytes) throw TooLarge(path, stream.Length, maxBytes, what);
            return ReadAll(stream, path, maxBytes, what); // bounded again while reading, in case the file grows
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new ClipGenException($"{path}: file not found", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ClipGenException($"{path}: cannot read the file ({e.Message})", e);
        }
    }

    /// <summary>The rest of <paramref name="stream"/> (named <paramref name="name"/> in errors), refused once it passes <paramref name="maxBytes"/>.</summary>
    public static byte[] ReadAll(Stream stream, string name, long maxBytes, string what)
    {
        try
        {
            using var buffer = new MemoryStream();
            var chunk = new byte[1 << 16];
            int n;
            while ((n = stream.Read(chunk)) > 0)
            {
                if (buffer.Length + n > maxBytes) throw TooLarge(name, buffer.Length + n, maxBytes, what);
                buffer.Write(chunk, 0, n);
            }
            return buffer.ToArray();
        }
        catch (IOException e)
        {
            throw new ClipGenException($"{name}: cannot read the data ({e.Message})", e);
        }
    }

    static ClipGenException TooLarge(string path, long length, long maxBytes, string what) =>
        new($"{path}: the file is {length:N0} bytes or more, over the {maxBytes:N0} bytes allowed for {what} (docs/limits.md)");

    const int RegularFile = 0x8000;

    static string Describe(int type) => type switch
    {
        0x1000 => "a FIFO",
        0x2000 => "a character device",
        0x6000 => "a block device",
        0xC000 => "a socket",
        0x4000 => "a folder",
        _ => $"file type 0{Convert.ToString(type, 8)}",
    };

    /// <summary>The <c>S_IFMT</c> bits of the file a path names (links followed), or null where this cannot be asked (not Linux).</summary>
    static int? FileType(string path)
    {
        if (!OperatingSystem.IsLinux()) return null;
        try
        {
            // statx's buffer has the same layout on every Linux architecture; stx_mode is the u16 at offset 28.
            Span<byte> buffer = stackalloc byte[256];
            const int AtFdCwd = -100, StatxType = 0x1;
            unsafe
            {
                fixed (byte* p = buffer)
                    if (Statx(AtFdCwd, path, 0, StatxType, p) != 0) return null;
            }
            return BitConverter.ToUInt16(buffer[28..]) & 0xF000;
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            return null;
        }
    }

    [DllImport("libc.so.6", EntryPoint = "statx", SetLastError = true)]
    static extern unsafe int Statx(int dirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, byte* buffer);
}
