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

    /// <summary>The spec's tokenizer; <paramref name="vocabPath"/> is needed for <c>clip_bpe</c> (else $CLIPGEN_VOCAB).</summary>
    public static ITextTokenizer CreateTokenizer(this ClipSpec spec, string? vocabPath = null)
    {
        var tok = TextTokenizers.Create(spec.Tokenizer.Kind, vocabPath);
        if (tok.VocabSize > spec.Text.VocabSize)
            throw new ClipGenException($"tokenizer '{tok.Kind}' has {tok.VocabSize} ids but spec '{spec.Name}' embeds only {spec.Text.VocabSize}");
        return tok;
    }
}
