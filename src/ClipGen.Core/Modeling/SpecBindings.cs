using ClipGen.Imaging;
using ClipGen.Specs;
using ClipGen.Text;

namespace ClipGen.Modeling;

/// <summary>The spec's tokenizer and preprocessing, as runtime objects.</summary>
public static class SpecBindings
{
    /// <summary>The image preprocessing the spec declares (size, mean, std, interpolation, resize mode, fill).</summary>
    public static PreprocessOptions ToPreprocessOptions(this ClipSpec spec) => new()
    {
        ImageSize = spec.Preprocess.ImageSize,
        Mean = new RgbFloat((float)spec.Preprocess.Mean[0], (float)spec.Preprocess.Mean[1], (float)spec.Preprocess.Mean[2]),
        Std = new RgbFloat((float)spec.Preprocess.Std[0], (float)spec.Preprocess.Std[1], (float)spec.Preprocess.Std[2]),
        Interpolation = spec.Preprocess.Interpolation == InterpolationKind.Bilinear ? Interpolation.Bilinear : Interpolation.Bicubic,
        ResizeMode = spec.Preprocess.ResizeMode switch
        {
            ResizeModeKind.Longest => ResizeMode.Longest,
            ResizeModeKind.Squash => ResizeMode.Squash,
            _ => ResizeMode.Shortest,
        },
        FillColor = new RgbColor((byte)spec.Preprocess.FillColor, (byte)spec.Preprocess.FillColor, (byte)spec.Preprocess.FillColor),
    };

    /// <summary>The spec's image preprocessor.</summary>
    public static ImagePreprocessor CreatePreprocessor(this ClipSpec spec) => new(spec.ToPreprocessOptions());

    /// <summary>
    /// The spec's tokenizer (<c>tokenizer.kind</c>, <c>file</c>, <c>clean</c>, the text tower's context, end and pad ids).
    /// <paramref name="vocabPath"/> is the vocabulary file, or a folder holding the spec's <c>tokenizer.file</c>; <c>clip_bpe</c>
    /// also finds OpenAI's file through $CLIPGEN_VOCAB.
    /// </summary>
    public static ITextTokenizer CreateTokenizer(this ClipSpec spec, string? vocabPath = null) => TextTokenizers.Create(spec, vocabPath);
}
