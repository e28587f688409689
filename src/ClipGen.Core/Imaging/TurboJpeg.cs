using System.Buffers;
using System.Runtime.InteropServices;

namespace ClipGen.Imaging;

/// <summary>
/// JPEG decoding through the system's libjpeg-turbo (TurboJPEG API, <c>libturbojpeg.so.0</c>, Debian package
/// <c>libturbojpeg0</c>), when it is installed.
/// </summary>
/// <remarks>
/// SkiaSharp embeds libjpeg-turbo too, but its build decodes a 640×480 photo about twice as slowly as the distribution's
/// SIMD build (6.4 ms against 3.3 ms for a noisy 4:2:0 JPEG on the benchmark machine), and the decode is most of
/// preprocessing's time. Both are the same library with the same settings (accurate integer IDCT, fancy upsampling), as is
/// PIL's: the pixels are identical, which the tests check against Skia and against PIL's reference output.
/// Only baseline and progressive JPEGs in YCbCr, grey or RGB are decoded here; CMYK/YCCK, and any file on which libjpeg-turbo
/// reports so much as a warning (truncated data, corrupt segments), go to Skia's decoder so that errors and edge cases keep
/// one behaviour.
/// </remarks>
internal static unsafe class TurboJpeg
{
    const string Library = "libturbojpeg.so.0";

    // turbojpeg.h (libjpeg-turbo 2.x; stable ABI).
    const int TJPF_RGBA = 7;
    const int TJFLAG_ACCURATEDCT = 4096;
    const int TJCS_RGB = 0, TJCS_YCbCr = 1, TJCS_GRAY = 2;

    [StructLayout(LayoutKind.Sequential)]
    struct Api
    {
        public delegate* unmanaged<nint> InitDecompress;
        public delegate* unmanaged<nint, byte*, CULong, int*, int*, int*, int*, int> DecompressHeader3;
        public delegate* unmanaged<nint, byte*, CULong, byte*, int, int, int, int, int, int> Decompress2;
        public delegate* unmanaged<nint, int> Destroy;
        public delegate* unmanaged<nint, byte*> GetErrorStr2; // libjpeg-turbo 2.0+; null before
    }

    static readonly Api? Functions = Load();

    [ThreadStatic] static nint t_handle;

    /// <summary>Whether libturbojpeg could be loaded in this process.</summary>
    public static bool IsAvailable => Functions is not null;

    static Api? Load()
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS()) return null;
        if (!NativeLibrary.TryLoad(Library, typeof(TurboJpeg).Assembly, null, out var lib)
            && !NativeLibrary.TryLoad(OperatingSystem.IsMacOS() ? "libturbojpeg.dylib" : "libturbojpeg.so", out lib))
            return null;
        try
        {
            return new Api
            {
                InitDecompress = (delegate* unmanaged<nint>)NativeLibrary.GetExport(lib, "tjInitDecompress"),
                DecompressHeader3 = (delegate* unmanaged<nint, byte*, CULong, int*, int*, int*, int*, int>)NativeLibrary.GetExport(lib, "tjDecompressHeader3"),
                Decompress2 = (delegate* unmanaged<nint, byte*, CULong, byte*, int, int, int, int, int, int>)NativeLibrary.GetExport(lib, "tjDecompress2"),
                Destroy = (delegate* unmanaged<nint, int>)NativeLibrary.GetExport(lib, "tjDestroy"),
                GetErrorStr2 = NativeLibrary.TryGetExport(lib, "tjGetErrorStr2", out var errorStr) ? (delegate* unmanaged<nint, byte*>)errorStr : null,
            };
        }
        catch (EntryPointNotFoundException)
        {
            return null;
        }
    }

    /// <summary>One decompressor per thread, kept for the thread's life (a handle is a few KiB).</summary>
    static nint Handle(in Api api)
    {
        if (t_handle == 0) t_handle = api.InitDecompress();
        return t_handle;
    }

    /// <summary>
    /// Decodes <paramref name="data"/> into RGBA, or returns null when this decoder does not take the file (not
    /// available, CMYK, any warning or error): the caller then decodes with Skia. Throws only for the pixel limit.
    /// </summary>
    public static DecodedImage? TryDecode(byte[] data, string name, long maxPixels) => TryDecode(data, name, maxPixels, out _);

    /// <summary>As <see cref="TryDecode(byte[], string, long)"/>; <paramref name="problem"/> is libjpeg-turbo's warning or error when it reported one.</summary>
    public static DecodedImage? TryDecode(byte[] data, string name, long maxPixels, out string? problem)
    {
        problem = null;
        if (Functions is not { } api) return null;
        nint handle = Handle(api);
        if (handle == 0) return null;

        int width, height, subsampling, colorspace;
        fixed (byte* src = data)
        {
            if (api.DecompressHeader3(handle, src, new CULong((nuint)data.Length), &width, &height, &subsampling, &colorspace) != 0)
                return null;
        }
        if (colorspace is not (TJCS_YCbCr or TJCS_GRAY or TJCS_RGB) || width <= 0 || height <= 0) return null;
        ImageDecoder.CheckPixels(width, height, name, maxPixels);

        long bytes = (long)width * height * 4;
        if (bytes > Array.MaxLength) return null;
        var buffer = ArrayPool<byte>.Shared.Rent((int)bytes);
        int rc;
        fixed (byte* src = data)
        fixed (byte* dst = buffer)
            rc = api.Decompress2(handle, src, new CULong((nuint)data.Length), dst, width, width * 4, height, TJPF_RGBA, TJFLAG_ACCURATEDCT);
        if (rc != 0)
        {
            // A warning (e.g. "Premature end of JPEG file", "Corrupt JPEG data: …") or an error: Skia decodes the file again, so
            // that truncated files get the same message with or without libjpeg-turbo; if Skia accepts it, the caller refuses it
            // with this problem (Skia's decoder does not report libjpeg's warnings about corrupt scan data).
            problem = api.GetErrorStr2 == null ? "libjpeg-turbo reported a problem" : Marshal.PtrToStringUTF8((nint)api.GetErrorStr2(handle)) ?? "";
            ArrayPool<byte>.Shared.Return(buffer);
            return null;
        }
        // Grey JPEGs open in PIL's mode L, which resizes exactly like RGB once replicated (TJPF_RGBA does that).
        return new DecodedImage { Width = width, Height = height, Mode = PilMode.Rgb, Rgba = buffer, Rented = true };
    }
}
