using ClipGen.Onnx;
using ClipGen.Specs;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ClipGen.Modules;

/// <summary>
/// The ViT image tower of every family, as open_clip's <c>VisionTransformer</c> with timm's options: patch embedding
/// (<c>conv1</c>, optional bias), optional class token (<c>class_embedding</c>), <c>positional_embedding</c>, optional
/// <c>ln_pre</c>, transformer, <c>ln_post</c> on every token before pooling or on the pooled vector after it, pooling (class
/// token, token mean, or the attention head <c>attn_pool</c>), optional <c>proj</c>. A feature that is off is never created, so
/// its keys do not exist. Keys in every layout: <see cref="VitPlan.WriteKeys"/>.
/// </summary>
public sealed class VisionTransformer : nn.Module<Tensor, Tensor>
{
    private readonly Parameter? class_embedding;
    private readonly Parameter positional_embedding;
    private readonly Parameter? proj;
    private readonly Conv2d conv1;
    private readonly LayerNorm? ln_pre;
    private readonly Transformer transformer;
    private readonly LayerNorm ln_post;
    private readonly AttentionPoolLatent? attn_pool;

    public VisionTransformer(VitPlan plan) : base("VisionTransformer")
    {
        Plan = plan;
        var scale = Math.Pow(plan.Width, -0.5);
        if (plan.ClassToken) class_embedding = nn.Parameter(torch.randn(plan.Width) * scale);
        positional_embedding = nn.Parameter(torch.randn(plan.Tokens, plan.Width) * scale);
        if (plan.Proj) proj = nn.Parameter(torch.randn(plan.Width, plan.OutputDim) * scale);
        conv1 = nn.Conv2d(3, plan.Width, plan.PatchSize, stride: plan.PatchSize, bias: plan.PatchBias);
        if (plan.LnPre is not null) ln_pre = Layers.LayerNorm(plan.LnPre);
        transformer = new Transformer(plan.Transformer);
        ln_post = Layers.LayerNorm(plan.LnPost);
        if (plan.AttentionPool is not null) attn_pool = new AttentionPoolLatent(plan.AttentionPool);
        RegisterComponents();
    }

    public VitPlan Plan { get; }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var p = Plan;
        x = conv1.call(x);                                  // [N, W, grid, grid]
        x = x.flatten(2).transpose(1, 2);                   // [N, grid², W]
        if (class_embedding is not null)
            x = torch.cat([class_embedding.to(x.dtype).expand(x.shape[0], 1, -1), x], dim: 1);
        x = x + positional_embedding.to(x.dtype);
        if (ln_pre is not null) x = ln_pre.call(x);
        x = transformer.call(x);
        Tensor pooled;
        if (attn_pool is not null)
            pooled = p.FinalLnAfterPool ? ln_post.call(attn_pool.call(x)) : attn_pool.call(ln_post.call(x));
        else if (p.Pool == VisionPooling.ClassToken || p.FinalLnAfterPool)
            // A LayerNorm acts on each token alone, so for the class token "before" and "after" pooling are the same numbers.
            pooled = ln_post.call(Pooling.Vision(x, p.Pool, p.ClassToken));
        else
            pooled = Pooling.Vision(ln_post.call(x), p.Pool, p.ClassToken);
        if (proj is not null) pooled = pooled.matmul(proj);
        return pooled.MoveToOuterDisposeScope();
    }

    /// <summary>The tower in ONNX, in the <c>visual</c> scope: [N, 3, R, R] → [N, OutputDim].</summary>
    public static OnnxValue Emit(OnnxGraphBuilder b, OnnxValue pixels, VitPlan p)
    {
        long w = p.Width;
        OnnxValue x;
        using (b.Scope("conv1")) x = Layers.EmitConv2d(b, pixels, w, 3, p.PatchSize, stride: p.PatchSize, bias: p.PatchBias);
        x = b.Transpose(b.Reshape(x, 0, w, -1), 0, 2, 1);                                 // [N, grid², W]
        if (p.ClassToken)
        {
            var cls = b.Expand(b.Reshape(b.Parameter("class_embedding", [w]), 1, 1, w),
                               b.Concat(0, b.Shape(pixels, 0, 1), b.Const(new long[] { 1, w })));   // [N, 1, W]
            x = b.Concat(1, cls, x);
        }
        x = b.Add(x, b.Parameter("positional_embedding", [p.Tokens, w]));
        if (p.LnPre is not null) using (b.Scope("ln_pre")) x = Layers.EmitLayerNorm(b, x, p.LnPre);
        using (b.Scope("transformer")) x = Transformer.Emit(b, x, p.Transformer, p.Tokens);
        OnnxValue LnPost(OnnxValue v) { using (b.Scope("ln_post")) return Layers.EmitLayerNorm(b, v, p.LnPost); }
        OnnxValue AttnPool(OnnxValue v) { using (b.Scope("attn_pool")) return AttentionPoolLatent.Emit(b, v, p.AttentionPool!); }
        OnnxValue pooled;
        if (p.AttentionPool is not null)
            pooled = p.FinalLnAfterPool ? LnPost(AttnPool(x)) : AttnPool(LnPost(x));
        else if (p.Pool == VisionPooling.ClassToken || p.FinalLnAfterPool)
            pooled = LnPost(Pooling.EmitVision(b, x, p.Pool, p.ClassToken, p.Tokens));
        else
            pooled = Pooling.EmitVision(b, LnPost(x), p.Pool, p.ClassToken, p.Tokens);
        return p.Proj ? b.MatMul(pooled, b.Parameter("proj", [w, p.OutputDim])) : pooled;
    }
}
