namespace ClipGen.Applications;

/// <summary>
/// The pipeline and the zero-shot classifier with plain arrays in and out: row-major <c>float[]</c> of N rows, no tensors
/// for the caller to own or dispose. Callers outside the library (the HTTP server) use these, so that they need no
/// tensor type at all.
/// </summary>
public static class PlainArrays
{
    /// <summary>L2-normalised text embeddings, row-major [texts.Count, D]; texts longer than the context are truncated as the tokenizer does.</summary>
    public static float[] EmbedTextRows(this ClipPipeline pipeline, IReadOnlyList<string> texts)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        ArgumentNullException.ThrowIfNull(texts);
        if (texts.Count == 0) return [];
        return pipeline.EmbedTexts(texts).Data;
    }

    /// <summary>
    /// L2-normalised image embeddings, row-major [count, D], of preprocessed pixels, row-major [count, 3, R, R]
    /// (<see cref="Imaging.ImagePreprocessor.Preprocess(Stream, string?)"/> makes one image's).
    /// </summary>
    public static float[] EmbedPixelRows(this ClipPipeline pipeline, float[] pixels, int count)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        ArgumentNullException.ThrowIfNull(pixels);
        long s = pipeline.Preprocessor.ImageSize;
        if (count < 0 || pixels.LongLength != count * 3 * s * s)
            throw new ArgumentException($"{pixels.LongLength} values are not {count} images of [3,{s},{s}]", nameof(pixels));
        if (count == 0) return [];
        return pipeline.EmbedImages(new ArrayTensor<float>(pixels, count, 3, s, s)).Data;
    }

    /// <summary>
    /// Each image's label probabilities, under the classifier's <see cref="ZeroShotClassifier.Rule"/>, of L2-normalised
    /// image embeddings, row-major [count, D].
    /// </summary>
    public static IReadOnlyList<ZeroShotResult> ClassifyEmbeddingRows(this ZeroShotClassifier classifier, float[] embeddings, int count)
    {
        ArgumentNullException.ThrowIfNull(classifier);
        ArgumentNullException.ThrowIfNull(embeddings);
        int d = classifier.Pipeline.Dimensions;
        if (count < 0 || embeddings.LongLength != (long)count * d)
            throw new ArgumentException($"{embeddings.LongLength} values are not {count} rows of {d}", nameof(embeddings));
        if (count == 0) return [];
        return classifier.ClassifyEmbeddings(new ArrayTensor<float>(embeddings, count, d));
    }
}
