using TorchSharp;

namespace ClipGen.Imaging;

/// <summary>Preprocessed pixels as TorchSharp tensors.</summary>
public static class ImagePreprocessorTensors
{
    /// <summary>Preprocesses the files in parallel into a float32 tensor [N, 3, S, S] on the CPU.</summary>
    public static torch.Tensor PreprocessToTensor(this ImagePreprocessor preprocessor, IReadOnlyList<string> paths)
    {
        ArgumentNullException.ThrowIfNull(preprocessor);
        var data = preprocessor.PreprocessBatch(paths);
        long s = preprocessor.ImageSize;
        return torch.tensor(data, new long[] { paths.Count, 3, s, s }, torch.float32);
    }
}
