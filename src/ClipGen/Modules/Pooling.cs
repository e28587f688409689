using ClipGen.Onnx;
using ClipGen.Specs;
using static TorchSharp.torch;

namespace ClipGen.Modules;

/// <summary>
/// The pooling rules of both towers (a block without parameters): a ViT's class token or token mean (its attention head is
/// <see cref="AttentionPoolLatent"/>), and the text tower's argmax / eos / first / last / mean. Each rule's TorchSharp forward
/// and ONNX emission are side by side.
/// </summary>
public static class Pooling
{
    /// <summary>A ViT's class-token or mean pooling of [N, L, D] → [N, D] (the mean excludes the class token, as open_clip's <c>avg</c>).</summary>
    public static Tensor Vision(Tensor x, VisionPooling pool, bool classToken) => pool switch
    {
        VisionPooling.ClassToken => x.select(1, 0),
        VisionPooling.Mean => (classToken ? x.narrow(1, 1, x.shape[1] - 1) : x).mean([1]),
        _ => throw new ArgumentOutOfRangeException(nameof(pool), pool, "the attention pool is a module of its own"),
    };

    /// <summary><see cref="Vision(Tensor, VisionPooling, bool)"/> in ONNX; <paramref name="tokens"/> is L.</summary>
    public static OnnxValue EmitVision(OnnxGraphBuilder b, OnnxValue x, VisionPooling pool, bool classToken, int tokens) => pool switch
    {
        VisionPooling.ClassToken => b.Gather(x, b.Const(0L), axis: 1),
        VisionPooling.Mean => b.ReduceMean(classToken ? b.Slice(x, [1], [tokens], [1]) : x, [1], keepDims: false),
        _ => throw new ArgumentOutOfRangeException(nameof(pool), pool, "the attention pool is a module of its own"),
    };

    /// <summary>
    /// The text tower's pooling of [N, L, D] by the token ids [N, L]: the largest id (OpenAI), the first <paramref name="eosId"/>,
    /// the first or last position, or the mean over all positions.
    /// </summary>
    public static Tensor Text(Tensor x, Tensor ids, TextPooling pooling, int eosId)
    {
        using var scope = NewDisposeScope();
        long n = x.shape[0], l = x.shape[1];
        Tensor pooled;
        switch (pooling)
        {
            case TextPooling.First: pooled = x.select(1, 0); break;
            case TextPooling.Last: pooled = x.select(1, l - 1); break;
            case TextPooling.Mean: pooled = x.mean([1]); break;
            default:
            {
                // argmax returns the first maximum, like torch.argmax and ONNX ArgMax.
                var index = pooling == TextPooling.Eos ? ids.eq(eosId).to(ScalarType.Int32).argmax(-1) : ids.argmax(-1);
                pooled = x.gather(1, index.view(n, 1, 1).expand(n, 1, x.shape[2])).squeeze(1);
                break;
            }
        }
        return pooled.MoveToOuterDisposeScope();
    }

    /// <summary><see cref="Text"/> in ONNX; <paramref name="length"/> is L and <paramref name="width"/> D.</summary>
    public static OnnxValue EmitText(OnnxGraphBuilder b, OnnxValue x, OnnxValue ids, TextPooling pooling, int eosId, int length, int width)
    {
        switch (pooling)
        {
            case TextPooling.First: return b.Gather(x, b.Const(0L), axis: 1);
            case TextPooling.Last: return b.Gather(x, b.Const((long)(length - 1)), axis: 1);
            case TextPooling.Mean: return b.ReduceMean(x, [1], keepDims: false);
            default:
            {
                var index = pooling == TextPooling.Eos
                    ? b.ArgMax(b.Cast(b.Op1("Equal", [ids, b.Const((long)eosId)]), OnnxElementType.Int32), -1, keepDims: true)
                    : b.ArgMax(ids, -1, keepDims: true);
                var shape = b.Concat(0, b.Shape(ids, 0, 1), b.Const(new long[] { 1, width }));
                var row = b.GatherElements(x, b.Expand(b.Unsqueeze(index, 2), shape), axis: 1);    // [N, 1, D]
                return b.Reshape(row, 0, width);
            }
        }
    }
}
