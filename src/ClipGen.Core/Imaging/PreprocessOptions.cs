namespace ClipGen.Imaging;

/// <summary>How the source image is resampled (Pillow's antialiased filters).</summary>
public enum Interpolation
{
    /// <summary>Pillow <c>BICUBIC</c> (a = -0.5, support 2 widened by the downscale factor). OpenAI's and open_clip's default.</summary>
    Bicubic,
    /// <summary>Pillow <c>BILINEAR</c> (triangle filter, support 1 widened by the downscale factor).</summary>
    Bilinear,
}

/// <summary>How the image is fitted into the square input.</summary>
public enum ResizeMode
{
    /// <summary>Shortest side to <c>ImageSize</c>, then a centre crop (torchvision <c>Resize(int)</c> + <c>CenterCrop</c>; OpenAI and open_clip default).</summary>
    Shortest,
    /// <summary>Longest side to <c>ImageSize</c>, then pad with <see cref="PreprocessOptions.FillColor"/> (open_clip <c>resize_mode="longest"</c>).</summary>
    Longest,
    /// <summary>Both sides to <c>ImageSize</c>, ignoring the aspect ratio (open_clip <c>resize_mode="squash"</c>).</summary>
    Squash,
}

/// <summary>Which library decodes JPEG files. Both give PIL's pixels; they differ in speed only.</summary>
public enum JpegDecoder
{
    /// <summary>The system's libjpeg-turbo (<c>libturbojpeg.so.0</c>, SIMD) when it is installed, else SkiaSharp.</summary>
    Auto,
    /// <summary>Always SkiaSharp's built-in libjpeg-turbo.</summary>
    Skia,
}

/// <summary>An 8-bit RGB colour.</summary>
public readonly record struct RgbColor(byte R, byte G, byte B);

/// <summary>One float per RGB channel (a normalisation mean or standard deviation).</summary>
public readonly record struct RgbFloat(float R, float G, float B)
{
    public float this[int channel] => channel switch { 0 => R, 1 => G, 2 => B, _ => throw new ArgumentOutOfRangeException(nameof(channel)) };
}

/// <summary>
/// Image preprocessing settings. The defaults are OpenAI CLIP's <c>_transform(224)</c>:
/// bicubic shortest-side resize, centre crop, <c>ToTensor</c>, <c>Normalize(mean, std)</c>.
/// </summary>
public sealed record PreprocessOptions
{
    /// <summary>PIL's <c>Image.MAX_IMAGE_PIXELS</c>: 1024·1024·1024 / 4 / 3.</summary>
    public const long PilMaxImagePixels = 89_478_485;

    /// <summary>OpenAI CLIP's normalisation mean (also open_clip's OPENAI_DATASET_MEAN).</summary>
    public static RgbFloat OpenAIMean { get; } = new(0.48145466f, 0.4578275f, 0.40821073f);

    /// <summary>OpenAI CLIP's normalisation standard deviation (also open_clip's OPENAI_DATASET_STD).</summary>
    public static RgbFloat OpenAIStd { get; } = new(0.26862954f, 0.26130258f, 0.27577711f);

    /// <summary>OpenAI's preprocessing at 224 pixels.</summary>
    public static PreprocessOptions OpenAI { get; } = new();

    /// <summary>Side of the square output, in pixels (the model's <c>image_size</c>).</summary>
    public int ImageSize { get; init; } = 224;

    /// <summary>Per-channel mean subtracted after scaling to [0, 1].</summary>
    public RgbFloat Mean { get; init; } = OpenAIMean;

    /// <summary>Per-channel standard deviation divided by after subtracting the mean.</summary>
    public RgbFloat Std { get; init; } = OpenAIStd;

    /// <summary>Resampling filter.</summary>
    public Interpolation Interpolation { get; init; } = Interpolation.Bicubic;

    /// <summary>How the image is fitted into the square.</summary>
    public ResizeMode ResizeMode { get; init; } = ResizeMode.Shortest;

    /// <summary>Padding colour for <see cref="ResizeMode.Longest"/> (open_clip's <c>fill_color</c>, default black).</summary>
    public RgbColor FillColor { get; init; }

    /// <summary>
    /// Decompression-bomb guard: an image whose header declares more pixels than this is refused before
    /// any pixel is decoded. Default is PIL's <c>MAX_IMAGE_PIXELS</c> (PIL only warns there and refuses at twice
    /// that; we refuse at once). Set to <c>2 * PilMaxImagePixels</c> to accept exactly what PIL accepts.
    /// </summary>
    public long MaxPixels { get; init; } = PilMaxImagePixels;

    /// <summary>
    /// The largest image file read, in bytes (default 256 MiB, or <c>CLIPGEN_MAX_IMAGE_BYTES</c>). Only regular files are read:
    /// a FIFO or a device (<c>/dev/zero</c>) named like an image is refused before it is opened.
    /// </summary>
    public long MaxFileBytes { get; init; } = Limits.MaxImageFileBytes;

    /// <summary>
    /// JPEG decoder (default <see cref="JpegDecoder.Auto"/>: the system's libjpeg-turbo when installed, about twice as fast as
    /// SkiaSharp's build on a 640×480 photo; the pixels are the same). See docs/preprocessing.md.
    /// </summary>
    public JpegDecoder JpegDecoder { get; init; } = JpegDecoder.Auto;

    /// <summary>Throws <see cref="ClipGenException"/> when a setting is out of range.</summary>
    public void Validate()
    {
        if (ImageSize is < 1 or > 8192) throw new ClipGenException($"image size must be between 1 and 8192, not {ImageSize}");
        if (MaxPixels < 1) throw new ClipGenException($"MaxPixels must be positive, not {MaxPixels}");
        if (MaxFileBytes < 1) throw new ClipGenException($"MaxFileBytes must be positive, not {MaxFileBytes}");
        for (int c = 0; c < 3; c++)
        {
            if (!float.IsFinite(Mean[c])) throw new ClipGenException($"mean[{c}] must be a finite number, not {Mean[c]}");
            if (!float.IsFinite(Std[c]) || Std[c] == 0) throw new ClipGenException($"std[{c}] must be a finite non-zero number, not {Std[c]}");
        }
        if (!Enum.IsDefined(Interpolation)) throw new ClipGenException($"unknown interpolation {(int)Interpolation}");
        if (!Enum.IsDefined(JpegDecoder)) throw new ClipGenException($"unknown JPEG decoder {(int)JpegDecoder}");
        if (!Enum.IsDefined(ResizeMode)) throw new ClipGenException($"unknown resize mode {(int)ResizeMode}");
    }
}
