using TorchSharp;

namespace ClipGen.Text;

/// <summary>Token ids as TorchSharp tensors.</summary>
public static class TokenTensors
{
    /// <summary>Wraps a row-major [N, contextLength] id array into an int64 tensor of shape [N, contextLength].</summary>
    public static torch.Tensor ToTensor(long[] ids, int contextLength)
    {
        ArgumentNullException.ThrowIfNull(ids);
        TokenBatching.CheckContextLength(contextLength);
        if (ids.Length % contextLength != 0)
            throw new ArgumentException($"{ids.Length} ids do not make whole rows of {contextLength}", nameof(ids));
        return torch.tensor(ids, [ids.Length / contextLength, contextLength], dtype: torch.ScalarType.Int64);
    }

    /// <summary>Encodes a batch straight into an int64 tensor [texts.Count, contextLength].</summary>
    public static torch.Tensor EncodeToTensor(this ITextTokenizer tokenizer, IReadOnlyList<string> texts, int contextLength,
        TruncationMode mode = TruncationMode.Truncate)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        return ToTensor(tokenizer.EncodeBatch(texts, contextLength, mode), contextLength);
    }
}
