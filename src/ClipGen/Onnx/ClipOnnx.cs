using System.Globalization;
using static TorchSharp.torch;

namespace ClipGen.Onnx;

/// <summary>
/// CLIP's building blocks emitted into an <see cref="OnnxGraphBuilder"/>, mirroring OpenAI's clip/model.py (and open_clip's
/// GELU). Every emitter works in the builder's current scope, like a PyTorch module that does not know its own name:
/// the caller enters the child's scope (<c>using (b.Scope("ln_1"))</c>), so weights are read by their full state_dict key
/// through <c>w</c>. Transformers run batch-first internally ([N, L, D]); OpenAI's [L, N, D] gives the same numbers.
/// </summary>
/// <remarks>
/// House rule 7 (forward and emission side by side) is kept by cross-reference: every TorchSharp block in
/// <c>ClipGen.Modules</c> names its emitter here in its XML doc, and each emitter names its module. The emitters stay in one
/// class because they share the builder helpers and are unit-tested together against the reference fixtures.
/// </remarks>
public static class ClipOnnx
{
    const float LayerNormEps = 1e-5f;
    const float BatchNormEps = 1e-5f;

    // ---------------------------------------------------------------- leaves

    /// <summary>nn.LayerNorm(eps 1e-5) over the last axis, computed in float32 (<c>weight</c>, <c>bias</c>).</summary>
    public static OnnxValue LayerNorm(OnnxGraphBuilder b, OnnxValue x, Func<string, Tensor> w) =>
        b.LayerNormalization(x, b.Parameter("weight", w), b.Parameter("bias", w), LayerNormEps);

    /// <summary>nn.Linear: x·Wᵀ + b (<c>weight</c> [out, in], <c>bias</c> [out]).</summary>
    public static OnnxValue Linear(OnnxGraphBuilder b, OnnxValue x, Func<string, Tensor> w, bool bias = true)
    {
        var y = b.MatMul(x, b.Transpose(b.Parameter("weight", w), 1, 0));
        return bias ? b.Add(y, b.Parameter("bias", w)) : y;
    }

    /// <summary>nn.Linear(inFeatures, outFeatures) with the weight shapes checked.</summary>
    public static OnnxValue Linear(OnnxGraphBuilder b, OnnxValue x, Func<string, Tensor> w, int outFeatures, int inFeatures)
    {
        var y = b.MatMul(x, b.Transpose(b.Parameter("weight", w, [outFeatures, inFeatures]), 1, 0));
        return b.Add(y, b.Parameter("bias", w, [outFeatures]));
    }

    /// <summary>nn.Conv2d without bias (<c>weight</c> [out, in, k, k]).</summary>
    public static OnnxValue Conv2d(OnnxGraphBuilder b, OnnxValue x, Func<string, Tensor> w, int stride = 1, int padding = 0) =>
        b.Conv(x, b.Parameter("weight", w), null, [stride, stride], [padding, padding, padding, padding]);

    /// <summary>nn.BatchNorm2d in eval mode (<c>weight</c>, <c>bias</c>, <c>running_mean</c>, <c>running_var</c>; eps 1e-5).</summary>
    public static OnnxValue BatchNorm2d(OnnxGraphBuilder b, OnnxValue x, Func<string, Tensor> w) =>
        b.BatchNormalization(x, b.Parameter("weight", w), b.Parameter("bias", w), b.Parameter("running_mean", w), b.Parameter("running_var", w), BatchNormEps);

    /// <summary>nn.AvgPool2d(k) (stride k, no padding).</summary>
    public static OnnxValue AvgPool2d(OnnxGraphBuilder b, OnnxValue x, int k) => b.AveragePool(x, [k, k], [k, k]);

    /// <summary>QuickGELU: x·sigmoid(1.702x).</summary>
    /// <remarks>TorchSharp forward: <see cref="Modules.QuickGELU"/>.</remarks>
    public static OnnxValue QuickGelu(OnnxGraphBuilder b, OnnxValue x) => b.Mul(x, b.Sigmoid(b.Mul(x, b.Const(1.702f))));

    /// <summary>Exact GELU: 0.5·x·(1 + erf(x/√2)); the native <c>Gelu</c> op from opset 20.</summary>
    public static OnnxValue Gelu(OnnxGraphBuilder b, OnnxValue x)
    {
        if (b.Opset >= 20) return b.Op1("Gelu", [x], OnnxAttribute.String("approximate", "none"));
        var erf = b.Erf(b.Div(x, b.Const(MathF.Sqrt(2f))));
        return b.Mul(b.Mul(x, b.Add(erf, b.Const(1f))), b.Const(0.5f));
    }

    public static OnnxValue Activate(OnnxGraphBuilder b, OnnxValue x, Activation act) => act switch
    {
        Activation.QuickGelu => QuickGelu(b, x),
        Activation.Gelu => Gelu(b, x),
        _ => throw new ArgumentOutOfRangeException(nameof(act), act, null),
    };

    // ---------------------------------------------------------------- attention

    /// <summary>
    /// Multi-head scaled dot-product attention on batch-first [N, Lq, D] queries and [N, Lk, D] keys/values (already projected):
    /// q is scaled by 1/√head_dim; <paramref name="mask"/> is added to the [Lq, Lk] scores. Returns [N, Lq, D].
    /// </summary>
    public static OnnxValue ScaledDotProductAttention(OnnxGraphBuilder b, OnnxValue q, OnnxValue k, OnnxValue v, int width, int heads, OnnxValue? mask = null)
    {
        if (width % heads != 0) throw new ArgumentException($"width {width} is not divisible by {heads} heads");
        long hd = width / heads;
        var qh = b.Transpose(b.Reshape(q, 0, 0, heads, hd), 0, 2, 1, 3);   // [N, H, Lq, hd]
        var kh = b.Transpose(b.Reshape(k, 0, 0, heads, hd), 0, 2, 3, 1);   // [N, H, hd, Lk]
        var vh = b.Transpose(b.Reshape(v, 0, 0, heads, hd), 0, 2, 1, 3);   // [N, H, Lk, hd]
        qh = b.Mul(qh, b.Const(1f / MathF.Sqrt(hd)));
        var scores = b.MatMul(qh, kh);                                      // [N, H, Lq, Lk]
        if (mask is not null) scores = b.Add(scores, mask);
        var o = b.MatMul(b.Softmax(scores, -1), vh);                        // [N, H, Lq, hd]
        return b.Reshape(b.Transpose(o, 0, 2, 1, 3), 0, 0, width);         // [N, Lq, D]
    }

    /// <summary>
    /// nn.MultiheadAttention(width, heads) self-attention on [N, L, D] (<c>in_proj_weight</c> [3D, D], <c>in_proj_bias</c>,
    /// <c>out_proj.weight</c>, <c>out_proj.bias</c>), with an optional additive [L, L] mask.
    /// </summary>
    /// <remarks>TorchSharp forward: <see cref="Modules.MultiheadAttention"/>.</remarks>
    public static OnnxValue MultiheadAttention(OnnxGraphBuilder b, OnnxValue x, int width, int heads, Func<string, Tensor> w, OnnxValue? mask = null)
    {
        var qkv = b.Add(b.MatMul(x, b.Transpose(b.Parameter("in_proj_weight", w, [3L * width, width]), 1, 0)), b.Parameter("in_proj_bias", w, [3L * width]));
        var parts = b.Split(qkv, -1, 3);
        var o = ScaledDotProductAttention(b, parts[0], parts[1], parts[2], width, heads, mask);
        using (b.Scope("out_proj")) return Linear(b, o, w);
    }

    /// <summary>The additive causal mask of the text transformer: 0 on and below the diagonal, -inf above.</summary>
    public static OnnxValue CausalMask(OnnxGraphBuilder b, int length)
    {
        var m = new float[length * length];
        for (int i = 0; i < length; i++)
            for (int j = i + 1; j < length; j++) m[i * length + j] = float.NegativeInfinity;
        return b.Const(m, length, length);
    }

    // ---------------------------------------------------------------- transformer

    /// <summary>ResidualAttentionBlock: x + attn(ln_1(x)); x + mlp(ln_2(x)), mlp = c_fc → act → c_proj.</summary>
    /// <remarks>TorchSharp forward: <see cref="Modules.ResidualAttentionBlock"/>.</remarks>
    public static OnnxValue ResidualAttentionBlock(OnnxGraphBuilder b, OnnxValue x, TransformerHyper h, Func<string, Tensor> w, OnnxValue? mask = null)
    {
        OnnxValue y;
        using (b.Scope("ln_1")) y = LayerNorm(b, x, w);
        using (b.Scope("attn")) y = MultiheadAttention(b, y, h.Width, h.Heads, w, mask);
        x = b.Add(x, y);
        using (b.Scope("ln_2")) y = LayerNorm(b, x, w);
        using (b.Scope("mlp"))
        {
            using (b.Scope("c_fc")) y = Linear(b, y, w, h.MlpWidth, h.Width);
            y = Activate(b, y, h.Activation);
            using (b.Scope("c_proj")) y = Linear(b, y, w, h.Width, h.MlpWidth);
        }
        return b.Add(x, y);
    }

    /// <summary>Transformer: <c>resblocks.0 .. resblocks.{Layers-1}</c> on [N, L, D].</summary>
    /// <remarks>TorchSharp forward: <see cref="Modules.Transformer"/>.</remarks>
    public static OnnxValue Transformer(OnnxGraphBuilder b, OnnxValue x, TransformerHyper h, Func<string, Tensor> w, OnnxValue? mask = null)
    {
        for (int i = 0; i < h.Layers; i++)
            using (b.Scope("resblocks." + i.ToString(CultureInfo.InvariantCulture)))
                x = ResidualAttentionBlock(b, x, h, w, mask);
        return x;
    }

    // ---------------------------------------------------------------- towers

    /// <summary>Either image tower; call inside the <c>visual</c> scope. [N, 3, R, R] → [N, OutputDim].</summary>
    public static OnnxValue EmitVision(OnnxGraphBuilder b, OnnxValue pixels, VisionHyper h, Func<string, Tensor> w) => h switch
    {
        VitHyper v => EmitVisionTransformer(b, pixels, v, w),
        ResNetHyper r => EmitModifiedResNet(b, pixels, r, w),
        _ => throw new NotSupportedException($"unknown vision tower {h.GetType().Name}"),
    };

    /// <summary>
    /// VisionTransformer: conv1 (no bias) patches, prepend class_embedding, + positional_embedding, ln_pre, transformer,
    /// ln_post on the class token, @ proj. [N, 3, R, R] → [N, OutputDim].
    /// </summary>
    /// <remarks>TorchSharp forward: <see cref="Modules.VisionTransformer"/>.</remarks>
    public static OnnxValue EmitVisionTransformer(OnnxGraphBuilder b, OnnxValue pixels, VitHyper h, Func<string, Tensor> w)
    {
        OnnxValue x;
        using (b.Scope("conv1")) x = b.Conv(pixels, b.Parameter("weight", w, [h.Width, 3, h.PatchSize, h.PatchSize]), null, [h.PatchSize, h.PatchSize], [0, 0, 0, 0]);
        x = b.Transpose(b.Reshape(x, 0, h.Width, -1), 0, 2, 1);                        // [N, grid², W]
        var batch = b.Shape(pixels, 0, 1);                                              // [N]
        var cls = b.Expand(b.Reshape(b.Parameter("class_embedding", w, [h.Width]), 1, 1, h.Width),
                           b.Concat(0, batch, b.Const(new long[] { 1, h.Width })));   // [N, 1, W]
        x = b.Add(b.Concat(1, cls, x), b.Parameter("positional_embedding", w, [(long)h.Grid * h.Grid + 1, h.Width]));
        using (b.Scope("ln_pre")) x = LayerNorm(b, x, w);
        using (b.Scope("transformer")) x = Transformer(b, x, h.Transformer, w);
        x = b.Gather(x, b.Const(0L), axis: 1);                                          // class token [N, W]
        using (b.Scope("ln_post")) x = LayerNorm(b, x, w);
        return b.MatMul(x, b.Parameter("proj", w, [h.Width, h.OutputDim]));
    }

    /// <summary>Bottleneck (expansion 4): conv1/bn1/relu, conv2 3×3/bn2/relu, avgpool(stride), conv3/bn3, + downsample(x), relu.</summary>
    /// <remarks>TorchSharp forward: <see cref="Modules.Bottleneck"/>.</remarks>
    public static OnnxValue Bottleneck(OnnxGraphBuilder b, OnnxValue x, int inplanes, int planes, int stride, Func<string, Tensor> w)
    {
        OnnxValue o;
        using (b.Scope("conv1")) o = Conv2d(b, x, w);
        using (b.Scope("bn1")) o = b.Relu(BatchNorm2d(b, o, w));
        using (b.Scope("conv2")) o = Conv2d(b, o, w, padding: 1);
        using (b.Scope("bn2")) o = b.Relu(BatchNorm2d(b, o, w));
        if (stride > 1) o = AvgPool2d(b, o, stride);
        using (b.Scope("conv3")) o = Conv2d(b, o, w);
        using (b.Scope("bn3")) o = BatchNorm2d(b, o, w);
        var identity = x;
        if (stride > 1 || inplanes != planes * 4)
        {
            using (b.Scope("downsample"))
            {
                if (stride > 1) identity = AvgPool2d(b, identity, stride);     // downsample."-1"
                using (b.Scope("0")) identity = Conv2d(b, identity, w);
                using (b.Scope("1")) identity = BatchNorm2d(b, identity, w);
            }
        }
        return b.Relu(b.Add(o, identity));
    }

    /// <summary>
    /// AttentionPool2d: flatten HW, prepend the mean token, + positional_embedding, attention of the first token over all
    /// (separate q_proj/k_proj/v_proj, c_proj out). [N, C, H, W] → [N, outputDim].
    /// </summary>
    /// <remarks>TorchSharp forward: <see cref="Modules.AttentionPool2d"/>.</remarks>
    public static OnnxValue AttentionPool2d(OnnxGraphBuilder b, OnnxValue x, int spacialDim, int embedDim, int heads, int outputDim, Func<string, Tensor> w)
    {
        x = b.Transpose(b.Reshape(x, 0, 0, -1), 0, 2, 1);                               // [N, HW, C]
        x = b.Concat(1, b.ReduceMean(x, [1], keepDims: true), x);                      // [N, HW+1, C]
        x = b.Add(x, b.Parameter("positional_embedding", w, [(long)spacialDim * spacialDim + 1, embedDim]));
        var first = b.Slice(x, [0], [1], [1]);                                         // [N, 1, C]
        OnnxValue q, k, v, o;
        using (b.Scope("q_proj")) q = Linear(b, first, w, embedDim, embedDim);
        using (b.Scope("k_proj")) k = Linear(b, x, w, embedDim, embedDim);
        using (b.Scope("v_proj")) v = Linear(b, x, w, embedDim, embedDim);
        o = ScaledDotProductAttention(b, q, k, v, embedDim, heads);                    // [N, 1, C]
        using (b.Scope("c_proj")) o = Linear(b, o, w, outputDim, embedDim);            // [N, 1, out]
        return b.Squeeze(o, 1);
    }

    /// <summary>ModifiedResNet: stem (3 convs, avgpool 2), layer1..layer4, attnpool. [N, 3, R, R] → [N, OutputDim].</summary>
    /// <remarks>TorchSharp forward: <see cref="Modules.ModifiedResNet"/>.</remarks>
    public static OnnxValue EmitModifiedResNet(OnnxGraphBuilder b, OnnxValue pixels, ResNetHyper h, Func<string, Tensor> w)
    {
        var x = pixels;
        using (b.Scope("conv1")) x = b.Conv(x, b.Parameter("weight", w, [h.Width / 2, 3, 3, 3]), null, [2, 2], [1, 1, 1, 1]);
        using (b.Scope("bn1")) x = b.Relu(BatchNorm2d(b, x, w));
        using (b.Scope("conv2")) x = Conv2d(b, x, w, padding: 1);
        using (b.Scope("bn2")) x = b.Relu(BatchNorm2d(b, x, w));
        using (b.Scope("conv3")) x = Conv2d(b, x, w, padding: 1);
        using (b.Scope("bn3")) x = b.Relu(BatchNorm2d(b, x, w));
        x = AvgPool2d(b, x, 2);
        int inplanes = h.Width;
        int[] strides = [1, 2, 2, 2];
        var layers = h.Layers;
        for (int li = 0; li < 4; li++)
        {
            int planes = h.Width << li;
            using (b.Scope("layer" + (li + 1).ToString(CultureInfo.InvariantCulture)))
            {
                for (int bi = 0; bi < layers[li]; bi++)
                {
                    using (b.Scope(bi.ToString(CultureInfo.InvariantCulture)))
                        x = Bottleneck(b, x, inplanes, planes, bi == 0 ? strides[li] : 1, w);
                    inplanes = planes * 4;
                }
            }
        }
        using (b.Scope("attnpool")) return AttentionPool2d(b, x, h.SpacialDim, h.PoolEmbedDim, h.Heads, h.OutputDim, w);
    }

    /// <summary>
    /// encode_text at the model root: token_embedding Gather, + positional_embedding, causal transformer, ln_final,
    /// the row at argmax(input_ids) (the end token), @ text_projection. [N, C] int64 → [N, OutputDim].
    /// </summary>
    /// <remarks>TorchSharp forward: <see cref="Modeling.ClipModule.EncodeText"/>.</remarks>
    public static OnnxValue EmitTextEncoder(OnnxGraphBuilder b, OnnxValue inputIds, TextHyper h, Func<string, Tensor> w)
    {
        OnnxValue x;
        using (b.Scope("token_embedding")) x = b.Gather(b.Parameter("weight", w, [h.VocabSize, h.Width]), inputIds, 0);   // [N, C, D]
        x = b.Add(x, b.Parameter("positional_embedding", w, [h.ContextLength, h.Width]));
        var mask = CausalMask(b, h.ContextLength);
        using (b.Scope("transformer")) x = Transformer(b, x, h.Transformer, w, mask);
        using (b.Scope("ln_final")) x = LayerNorm(b, x, w);
        // OpenAI pools the largest id (the end token); Eos pooling takes the first eos_id (ArgMax returns the first maximum, like torch).
        var pooled = h.Pooling == Specs.TextPooling.Eos
            ? b.ArgMax(b.Cast(b.Op1("Equal", [inputIds, b.Const((long)h.EosId)]), OnnxElementType.Int32), -1, keepDims: true)
            : b.ArgMax(inputIds, -1, keepDims: true);
        var eot = b.Unsqueeze(pooled, 2);                                                         // [N, 1, 1]
        var shape = b.Concat(0, b.Shape(inputIds, 0, 1), b.Const(new long[] { 1, h.Width }));
        x = b.GatherElements(x, b.Expand(eot, shape), axis: 1);                                    // [N, 1, D]
        x = b.Reshape(x, 0, h.Width);
        return b.MatMul(x, b.Parameter("text_projection", w, [h.Width, h.OutputDim]));
    }

    /// <summary>
    /// CLIP.forward's head: both features normalised (x/‖x‖), scale = logit_scale.exp(),
    /// logits_per_image = scale·img·txtᵀ (+ <c>logit_bias</c> when <paramref name="logitBias"/>), logits_per_text its transpose.
    /// </summary>
    /// <remarks>TorchSharp forward: <see cref="Modeling.ClipModule.Logits"/>.</remarks>
    public static (OnnxValue LogitsPerImage, OnnxValue LogitsPerText) EmitLogits(OnnxGraphBuilder b, OnnxValue imageFeatures, OnnxValue textFeatures, Func<string, Tensor> w, bool logitBias = false)
    {
        var img = b.Div(imageFeatures, b.ReduceL2(imageFeatures, [-1], keepDims: true));
        var txt = b.Div(textFeatures, b.ReduceL2(textFeatures, [-1], keepDims: true));
        var scale = b.Exp(b.Parameter("logit_scale", w));
        var perImage = b.Mul(b.MatMul(img, b.Transpose(txt, 1, 0)), scale);
        if (logitBias) perImage = b.Add(perImage, b.Parameter("logit_bias", w));
        return (perImage, b.Transpose(perImage, 1, 0));
    }
}
