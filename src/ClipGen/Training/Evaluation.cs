using ClipGen.Backends;
using ClipGen.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace ClipGen.Training;

/// <summary>Evaluation metrics of a CLIP model: zero-shot accuracy and image↔text recall@k.</summary>
public static class Evaluation
{
    /// <summary>
    /// Zero-shot class embeddings as OpenAI built them: for each class, the normalised text embeddings of every
    /// template, averaged, then normalised again. Returns [classes, embed_dim].
    /// </summary>
    public static Tensor ClassEmbeddings(ClipModule model, IReadOnlyList<string> labels, IReadOnlyList<string> templates, Func<IReadOnlyList<string>, long[]> tokenize)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        int ctx = model.Spec.Text.ContextLength;
        var rows = new List<Tensor>();
        foreach (var label in labels)
        {
            var prompts = templates.Select(t => t.Replace("{}", label, StringComparison.Ordinal)).ToList();
            var ids = TensorArrays.FromArray(tokenize(prompts), [prompts.Count, ctx]);
            var emb = model.EncodeText(ids);
            emb = emb / emb.norm(1, keepdim: true);
            var mean = emb.mean([0]);
            rows.Add(mean / mean.norm());
        }
        return stack(rows).MoveToOuterDisposeScope();
    }

    /// <summary>Fraction of images whose nearest class embedding is their label.</summary>
    public static double ZeroShotAccuracy(ClipModule model, Tensor classEmbeddings, Tensor pixels, int[] labels, int batchSize = 256)
    {
        using var _ = no_grad();
        int correct = 0;
        for (int start = 0; start < labels.Length; start += batchSize)
        {
            using var scope = NewDisposeScope();
            var n = Math.Min(batchSize, labels.Length - start);
            var img = model.EncodeImage(pixels.narrow(0, start, n));
            img = img / img.norm(1, keepdim: true);
            var pred = img.matmul(classEmbeddings.t()).argmax(1).data<long>().ToArray();
            for (int i = 0; i < n; i++) if (pred[i] == labels[start + i]) correct++;
        }
        return (double)correct / labels.Length;
    }

    /// <summary>
    /// Top-1 and top-k zero-shot accuracy (open_clip's ImageNet zero-shot reports top-1 and top-5): the fraction of images whose
    /// label is the nearest class embedding, and the fraction whose label is among the <paramref name="k"/> nearest (all of them
    /// when there are fewer classes).
    /// </summary>
    public static (double Top1, double TopK) ZeroShotTopK(ClipModule model, Tensor classEmbeddings, Tensor pixels, int[] labels, int k = 5, int batchSize = 256)
    {
        using var _ = no_grad();
        int classes = (int)classEmbeddings.shape[0];
        int kk = Math.Clamp(k, 1, classes);
        int top1 = 0, topK = 0;
        for (int start = 0; start < labels.Length; start += batchSize)
        {
            using var scope = NewDisposeScope();
            var n = Math.Min(batchSize, labels.Length - start);
            var img = model.EncodeImage(pixels.narrow(0, start, n));
            img = img / img.norm(1, keepdim: true);
            var best = img.matmul(classEmbeddings.t()).topk(kk, dim: 1).indexes.data<long>().ToArray();
            for (int i = 0; i < n; i++)
            {
                if (best[i * kk] == labels[start + i]) top1++;
                for (int j = 0; j < kk; j++)
                    if (best[i * kk + j] == labels[start + i]) { topK++; break; }
            }
        }
        return ((double)top1 / labels.Length, (double)topK / labels.Length);
    }

    /// <summary>
    /// Zero-shot accuracy through a backend (TorchSharp, ONNX Runtime fp32 or int8): class embeddings as in
    /// <see cref="ClassEmbeddings"/> but from the backend's text features, each image assigned to the nearest class.
    /// </summary>
    public static double ZeroShotAccuracy(Backends.IClipBackend backend, IReadOnlyList<string> classLabels, IReadOnlyList<string> templates,
        Func<IReadOnlyList<string>, long[]> tokenize, Tensor pixels, int[] labels)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var prompts = classLabels.SelectMany(l => templates.Select(t => t.Replace("{}", l, StringComparison.Ordinal))).ToList();
        var ids = TensorArrays.FromArray(tokenize(prompts), [prompts.Count, backend.Spec.Text.ContextLength]);
        var text = backend.EncodeText(ids);
        text = text / text.norm(1, keepdim: true);
        var classes = text.view(classLabels.Count, templates.Count, -1).mean([1]);
        classes = classes / classes.norm(1, keepdim: true);
        var img = backend.EncodeImage(pixels);
        img = img / img.norm(1, keepdim: true);
        var pred = img.matmul(classes.t()).argmax(1).data<long>().ToArray();
        return (double)pred.Where((p, i) => p == labels[i]).Count() / labels.Length;
    }

    /// <summary>Image→text and text→image recall@k for paired rows (row i of each is a pair).</summary>
    public static (double ImageToText, double TextToImage) RecallAtK(Tensor imageEmbeddings, Tensor textEmbeddings, int k)
    {
        using var scope = NewDisposeScope();
        var a = imageEmbeddings / imageEmbeddings.norm(1, keepdim: true);
        var b = textEmbeddings / textEmbeddings.norm(1, keepdim: true);
        var sim = a.matmul(b.t());
        long n = sim.shape[0];
        k = (int)Math.Min(k, n);
        var diag = arange(n).unsqueeze(1);
        var i2t = sim.topk(k, 1).indexes.eq(diag).any(1).to(ScalarType.Float32).mean().item<float>();
        var t2i = sim.t().topk(k, 1).indexes.eq(diag).any(1).to(ScalarType.Float32).mean().item<float>();
        return (i2t, t2i);
    }
}
