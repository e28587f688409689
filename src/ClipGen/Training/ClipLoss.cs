using TorchSharp;
using static TorchSharp.torch;

namespace ClipGen.Training;

/// <summary>The contrastive losses: CLIP's symmetric InfoNCE and SigLIP's pairwise sigmoid loss.</summary>
public static class ClipLoss
{
    /// <summary>
    /// CLIP's symmetric InfoNCE: the mean of the cross-entropy of image→text logits and of text→image logits, with the
    /// matching pair on the diagonal. <paramref name="logitsPerImage"/> is [N, N] (already scaled by exp(logit_scale)).
    /// </summary>
    public static Tensor InfoNce(Tensor logitsPerImage, Tensor logitsPerText)
    {
        using var scope = NewDisposeScope();
        var n = logitsPerImage.shape[0];
        var labels = arange(n, dtype: ScalarType.Int64, device: logitsPerImage.device);
        var loss = (nn.functional.cross_entropy(logitsPerImage, labels) + nn.functional.cross_entropy(logitsPerText, labels)) / 2;
        return loss.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// SigLIP's loss: every image–text pair is a binary decision, label +1 on the diagonal and −1 elsewhere;
    /// <c>−Σ log σ(label · logit) / N</c>. <paramref name="logits"/> is scale·cos + bias, [N, N].
    /// </summary>
    public static Tensor SigLip(Tensor logits)
    {
        using var scope = NewDisposeScope();
        var n = logits.shape[0];
        var labels = 2 * eye(n, dtype: logits.dtype, device: logits.device) - 1;
        var loss = -nn.functional.logsigmoid(labels * logits).sum() / n;
        return loss.MoveToOuterDisposeScope();
    }
}
