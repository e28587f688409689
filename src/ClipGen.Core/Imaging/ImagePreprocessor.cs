using System.Buffers;

namespace ClipGen.Imaging;

/// <summary>
/// CLIP image preprocessing, bit-compatible with OpenAI's <c>_transform</c> (PIL 9.4 + torchvision 0.14) and
/// open_clip's resize modes: decode, resize in the image's own PIL mode, crop or pad, <c>convert("RGB")</c>,
/// <c>ToTensor</c>, <c>Normalize</c>. Output is float32 CHW <c>[3, S, S]</c>. Thread-safe.
/// </summary>
public sealed class ImagePreprocessor
{
    readonly float[] _lut; // 3 × 256: ((v / 255f) - mean[c]) / std[c], in float32 like torchvision

    public ImagePreprocessor(PreprocessOptions? options = null)
    {
        Options = options ?? PreprocessOptions.OpenAI;
        Options.Validate();
        _lut = new float[3 * 256];
        for (int c = 0; c < 3; c++)
        {
            float mean = Options.Mean[c], std = Options.Std[c];
            for (int v = 0; v < 256; v++)
            {
                float x = (float)v / 255f;
                x -= mean;
                x /= std;
                _lut[c * 256 + v] = x;
            }
        }
    }

    public PreprocessOptions Options { get; }

    /// <summary>Side of the square output.</summary>
    public int ImageSize => Options.ImageSize;

    /// <summary>Floats per image: 3 · S · S.</summary>
    public int ValuesPerImage => 3 * Options.ImageSize * Options.ImageSize;

    /// <summary>Preprocesses the image file at <paramref name="path"/> into a new [3, S, S] array.</summary>
    public float[] Preprocess(string path)
    {
        var result = new float[ValuesPerImage];
        Preprocess(path, result);
        return result;
    }

    /// <summary>Preprocesses the image file at <paramref name="path"/> into <paramref name="destination"/> ([3, S, S]).</summary>
    public void Preprocess(string path, Span<float> destination)
    {
        ArgumentNullException.ThrowIfNull(path);
        CheckDestination(destination, 1);
        using var image = Decode(path);
        Run(image, destination);
    }

    /// <summary>Preprocesses an encoded image read from <paramref name="stream"/>; <paramref name="name"/> names it in errors.</summary>
    public float[] Preprocess(Stream stream, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        name ??= stream is FileStream fs ? fs.Name : "<stream>";
        var bytes = IO.InputFiles.ReadAll(stream, name, Options.MaxFileBytes, "an image (PreprocessOptions.MaxFileBytes, CLIPGEN_MAX_IMAGE_BYTES)");
        var result = new float[ValuesPerImage];
        using var image = ImageDecoder.Decode(bytes, name, Options.MaxPixels, Options.JpegDecoder);
        Run(image, result);
        return result;
    }

    /// <summary>
    /// Preprocesses raw 8-bit RGB pixels (row-major, 3 bytes per pixel, no padding), treated as a PIL "RGB" image.
    /// </summary>
    public float[] Preprocess(ReadOnlySpan<byte> rgb, int width, int height)
    {
        var result = new float[ValuesPerImage];
        Preprocess(rgb, width, height, result);
        return result;
    }

    /// <summary>Raw 8-bit RGB pixels into <paramref name="destination"/> ([3, S, S]).</summary>
    public void Preprocess(ReadOnlySpan<byte> rgb, int width, int height, Span<float> destination)
    {
        if (width <= 0 || height <= 0) throw new ClipGenException($"raw RGB image: invalid size {width}×{height}");
        if ((long)width * height > Options.MaxPixels)
            throw new ClipGenException($"raw RGB image: {width}×{height} pixels is above the limit of {Options.MaxPixels:N0}");
        if (rgb.Length != (long)width * height * 3)
            throw new ClipGenException($"raw RGB image: expected {(long)width * height * 3} bytes for {width}×{height}×3, got {rgb.Length}");
        CheckDestination(destination, 1);
        int n = width * height;
        var buffer = ArrayPool<byte>.Shared.Rent(n * 4);
        using var image = new DecodedImage { Width = width, Height = height, Mode = PilMode.Rgb, Rgba = buffer, Rented = true };
        for (int i = 0; i < n; i++)
        {
            buffer[4 * i] = rgb[3 * i];
            buffer[4 * i + 1] = rgb[3 * i + 1];
            buffer[4 * i + 2] = rgb[3 * i + 2];
            buffer[4 * i + 3] = 255;
        }
        Run(image, destination);
    }

    /// <summary>Preprocesses the files in parallel (at most <see cref="Environment.ProcessorCount"/> at a time) into a new [N, 3, S, S] array.</summary>
    public float[] PreprocessBatch(IReadOnlyList<string> paths)
    {
        ArgumentNullException.ThrowIfNull(paths);
        var result = new float[(long)paths.Count * ValuesPerImage];
        PreprocessBatch(paths, result);
        return result;
    }

    /// <summary>
    /// Preprocesses the files in parallel into <paramref name="destination"/> ([N, 3, S, S], N = paths.Count).
    /// The first failing file (in list order) is reported as a <see cref="ClipGenException"/>.
    /// </summary>
    public unsafe void PreprocessBatch(IReadOnlyList<string> paths, Span<float> destination)
    {
        ArgumentNullException.ThrowIfNull(paths);
        CheckDestination(destination, paths.Count);
        int per = ValuesPerImage;
        var errors = new Exception?[paths.Count];
        fixed (float* p = destination)
        {
            nint basePtr = (nint)p;
            Parallel.For(0, paths.Count, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, (i, state) =>
            {
                try
                {
                    var slice = new Span<float>((float*)basePtr + (long)i * per, per);
                    Preprocess(paths[i], slice);
                }
                catch (Exception e)
                {
                    errors[i] = e;
                    state.Stop();
                }
            });
        }
        foreach (var e in errors)
        {
            if (e is null) continue;
            if (e is ClipGenException) throw e;
            throw new ClipGenException($"{paths[Array.IndexOf(errors, e)]}: {e.Message}", e);
        }
    }

    void CheckDestination(Span<float> destination, int images)
    {
        long need = (long)images * ValuesPerImage;
        if (destination.Length != need)
            throw new ArgumentException($"destination holds {destination.Length} floats; [{images}, 3, {ImageSize}, {ImageSize}] needs {need}", nameof(destination));
    }

    /// <summary>The file's bytes: a regular file only (not a FIFO or a device), of at most <see cref="PreprocessOptions.MaxFileBytes"/>.</summary>
    byte[] ReadFile(string path) => IO.InputFiles.ReadAllBytes(path, Options.MaxFileBytes, "an image (PreprocessOptions.MaxFileBytes, CLIPGEN_MAX_IMAGE_BYTES)");

    /// <summary>Reads and decodes an image file within this preprocessor's limits (file size, pixel count).</summary>
    internal DecodedImage Decode(string path) => ImageDecoder.Decode(ReadFile(path), path, Options.MaxPixels, Options.JpegDecoder);

    /// <summary>Resize, crop or pad, convert to RGB, normalise into [3, S, S].</summary>
    internal void Run(DecodedImage image, Span<float> destination)
    {
        int size = Options.ImageSize;
        var plan = ResizePlan.For(image.Width, image.Height, size, Options.ResizeMode);
        int winBytes = plan.WinW * plan.WinH * 4;
        var window = ArrayPool<byte>.Shared.Rent(winBytes);
        try
        {
            ResizeWindow(image, plan, window.AsSpan(0, winBytes));
            Normalize(window, plan, destination);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(window);
        }
    }

    /// <summary>The window of the resized image, 4 bytes per pixel, colour channels as <c>convert("RGB")</c> leaves them.</summary>
    internal void ResizeWindow(DecodedImage image, ResizePlan plan, Span<byte> window)
    {
        int w = image.Width, h = image.Height;
        var interp = Options.Interpolation;
        bool same = plan.ResizedW == w && plan.ResizedH == h;

        if (image.Mode == PilMode.I)
        {
            var ints = new int[plan.WinW * plan.WinH];
            PilResample.Resample32(image.Gray32!, w, h, plan.ResizedW, plan.ResizedH, plan.WinLeft, plan.WinTop, plan.WinW, plan.WinH, interp, ints);
            for (int i = 0; i < ints.Length; i++)
            {
                // convert("RGB") from I clips to 0..255.
                byte v = (byte)Math.Clamp(ints[i], 0, 255);
                window[4 * i] = window[4 * i + 1] = window[4 * i + 2] = v;
                window[4 * i + 3] = 255;
            }
            return;
        }

        var src = image.Rgba.AsSpan(0, w * h * 4);
        if (same && image.Premultiplied)
            throw new InvalidOperationException("internal: an image already premultiplied for one resize cannot be reused unresized");
        if (same || image.Mode is PilMode.Rgb or PilMode.L)
        {
            PilResample.Resample8(src, w, h, plan.ResizedW, plan.ResizedH, plan.WinLeft, plan.WinTop, plan.WinW, plan.WinH, interp, window);
        }
        else if (image.Mode == PilMode.Nearest)
        {
            PilResample.Nearest(src, w, h, plan.ResizedW, plan.ResizedH, plan.WinLeft, plan.WinTop, plan.WinW, plan.WinH, window);
        }
        else
        {
            // RGBA / LA: Pillow converts to RGBa / La, resizes, converts back, then convert("RGB") drops alpha.
            if (!image.Premultiplied) PilResample.Premultiply(src);
            image.Premultiplied = true;
            PilResample.Resample8(src, w, h, plan.ResizedW, plan.ResizedH, plan.WinLeft, plan.WinTop, plan.WinW, plan.WinH, interp, window);
            PilResample.Unpremultiply(window);
        }
    }

    void Normalize(byte[] window, ResizePlan plan, Span<float> destination)
    {
        int size = Options.ImageSize;
        int plane = size * size;
        var fill = Options.FillColor;
        ReadOnlySpan<float> lut = _lut;
        bool padded = plan.WinW != size || plan.WinH != size;
        for (int c = 0; c < 3; c++)
        {
            var lutC = lut.Slice(c * 256, 256);
            var outC = destination.Slice(c * plane, plane);
            if (padded)
            {
                byte f = c switch { 0 => fill.R, 1 => fill.G, _ => fill.B };
                outC.Fill(lutC[f]);
            }
            for (int y = 0; y < plan.WinH; y++)
            {
                var outRow = outC.Slice((y + plan.PadTop) * size + plan.PadLeft, plan.WinW);
                int rowBase = y * plan.WinW * 4 + c;
                for (int x = 0; x < outRow.Length; x++)
                    outRow[x] = lutC[window[rowBase + 4 * x]];
            }
        }
    }
}
