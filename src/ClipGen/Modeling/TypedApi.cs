using ClipGen.Specs;
using static TorchSharp.torch;

namespace ClipGen.Modeling;

/// <summary>
/// Implemented by every generated model class. Its static members are the model's compile-time facts, so that
/// <see cref="Pixels{TModel}"/>, <see cref="TokenIds{TModel}"/> and the embedding types can check shapes against
/// the right model, and so that values of one model cannot be passed to another.
/// </summary>
public interface IClipModel<TSelf> where TSelf : ClipModule, IClipModel<TSelf>
{
    /// <summary>The resolved spec.</summary>
    static abstract ClipSpec ModelSpec { get; }
    /// <summary>The state_dict key table (key, shape, dtype).</summary>
    static abstract IReadOnlyList<KeyEntry> KeyTable { get; }
    /// <summary>Input resolution.</summary>
    static abstract int InputImageSize { get; }
    /// <summary>Token context length.</summary>
    static abstract int InputContextLength { get; }
    /// <summary>Joint embedding width.</summary>
    static abstract int OutputEmbedDim { get; }
    /// <summary>Creates a model with freshly initialised weights.</summary>
    static abstract TSelf Create();
}

/// <summary>Base of the per-model typed tensor wrappers. Owns its tensor.</summary>
public abstract class TypedTensor : IDisposable
{
    protected TypedTensor(Tensor tensor) => Tensor = tensor;

    /// <summary>The underlying tensor.</summary>
    public Tensor Tensor { get; }

    /// <summary>Number of rows (batch size).</summary>
    public long Count => Tensor.shape[0];

    public void Dispose() => Tensor.Dispose();
}

/// <summary>Pixels preprocessed for <typeparamref name="TModel"/>: float [N, 3, R, R] with R its image size.</summary>
public sealed class Pixels<TModel> : TypedTensor where TModel : ClipModule, IClipModel<TModel>
{
    Pixels(Tensor t) : base(t) { }

    /// <summary>Wraps a tensor after checking its shape against the model's image size.</summary>
    public static Pixels<TModel> FromTensor(Tensor pixelValues)
    {
        var r = TModel.InputImageSize;
        if (pixelValues.dim() != 4 || pixelValues.shape[1] != 3 || pixelValues.shape[2] != r || pixelValues.shape[3] != r)
            throw new ClipGenException($"{TModel.ModelSpec.Name} expects pixel_values [N,3,{r},{r}], got [{string.Join(",", pixelValues.shape)}]");
        return new Pixels<TModel>(pixelValues);
    }
}

/// <summary>Token ids for <typeparamref name="TModel"/>: int64 [N, L], L ≤ its context length.</summary>
public sealed class TokenIds<TModel> : TypedTensor where TModel : ClipModule, IClipModel<TModel>
{
    TokenIds(Tensor t) : base(t) { }

    /// <summary>Wraps a tensor after checking its shape against the model's context length.</summary>
    public static TokenIds<TModel> FromTensor(Tensor inputIds)
    {
        var c = TModel.InputContextLength;
        if (inputIds.dim() != 2 || inputIds.shape[1] > c)
            throw new ClipGenException($"{TModel.ModelSpec.Name} expects input_ids [N,L] with L <= {c}, got [{string.Join(",", inputIds.shape)}]");
        return new TokenIds<TModel>(inputIds);
    }
}

/// <summary>Image embeddings of <typeparamref name="TModel"/> ([N, embed_dim]).</summary>
public sealed class ImageEmbeddings<TModel>(Tensor features) : TypedTensor(features) where TModel : ClipModule, IClipModel<TModel>
{
    /// <summary>L2-normalised copy.</summary>
    public ImageEmbeddings<TModel> Normalize() => new(Tensor / Tensor.norm(1, keepdim: true));

    /// <summary>Cosine similarity [N_images, N_texts] with text embeddings of the same model.</summary>
    public Tensor CosineSimilarity(TextEmbeddings<TModel> text)
    {
        using var a = Tensor / Tensor.norm(1, keepdim: true);
        using var b = text.Tensor / text.Tensor.norm(1, keepdim: true);
        return a.matmul(b.t());
    }
}

/// <summary>Text embeddings of <typeparamref name="TModel"/> ([N, embed_dim]).</summary>
public sealed class TextEmbeddings<TModel>(Tensor features) : TypedTensor(features) where TModel : ClipModule, IClipModel<TModel>
{
    /// <summary>L2-normalised copy.</summary>
    public TextEmbeddings<TModel> Normalize() => new(Tensor / Tensor.norm(1, keepdim: true));
}
