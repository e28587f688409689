using ClipGen.Onnx;
using ClipGen.Specs;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ClipGen.Modules;

/// <summary>
/// SigLIP's attention-pool ("MAP") head, as timm's <c>AttentionPoolLatent</c> (latent length 1): a learned <c>latent</c> query
/// attends over the tokens (<c>attn</c>), then <c>x + mlp(norm(x))</c>; [N, L, D] → [N, D]. Keys in every layout:
/// <see cref="AttentionPoolPlan.WriteKeys"/>.
/// </summary>
public sealed class AttentionPoolLatent : nn.Module<Tensor, Tensor>
{
    private readonly Parameter latent;
    private readonly MultiheadAttention attn;
    private readonly LayerNorm norm;
    private readonly Mlp mlp;

    public AttentionPoolLatent(AttentionPoolPlan plan) : base("AttentionPoolLatent")
    {
        latent = nn.Parameter(torch.randn(1, 1, plan.Width) * Math.Pow(plan.Width, -0.5));
        attn = new MultiheadAttention(plan.Attention);
        norm = Layers.LayerNorm(plan.Norm);
        mlp = new Mlp(plan.Mlp);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var q = latent.to(x.dtype).expand(x.shape[0], -1, -1);
        var o = attn.Attend(q, x);                              // [N, 1, D]
        o = o + mlp.call(norm.call(o));
        return o.select(1, 0).MoveToOuterDisposeScope();
    }

    /// <summary>In the head's scope: [N, L, D] → [N, D].</summary>
    public static OnnxValue Emit(OnnxGraphBuilder b, OnnxValue x, AttentionPoolPlan p)
    {
        long d = p.Width;
        var batch = b.Shape(x, 0, 1);
        var q = b.Expand(b.Parameter("latent", [1, 1, d]), b.Concat(0, batch, b.Const(new long[] { 1, d })));   // [N, 1, D]
        OnnxValue o, y;
        using (b.Scope("attn")) o = MultiheadAttention.EmitAttend(b, q, x, p.Attention);
        using (b.Scope("norm")) y = Layers.EmitLayerNorm(b, o, p.Norm);
        using (b.Scope("mlp")) y = Mlp.Emit(b, y, p.Mlp);
        return b.Reshape(b.Add(o, y), 0, d);
    }
}
