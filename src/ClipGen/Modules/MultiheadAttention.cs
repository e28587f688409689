using ClipGen.Onnx;
using ClipGen.Specs;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ClipGen.Modules;

/// <summary>
/// <c>nn.MultiheadAttention</c> with PyTorch's parameter names (<c>in_proj_weight</c> = q, k, v stacked, <c>in_proj_bias</c>,
/// <c>out_proj</c>), written in managed code over batch-first input [N, L, D]: self-attention (optionally causal, the text
/// tower's mask), or a query of other tokens attending over <c>x</c> (the attention-pool head's latent; <see cref="AttentionPlan.LatentQuery"/>).
/// Keys in every layout: <see cref="AttentionPlan.WriteKeys"/>.
/// </summary>
public sealed class MultiheadAttention : nn.Module<Tensor, Tensor>
{
    private readonly Parameter in_proj_weight;
    private readonly Parameter in_proj_bias;
    private readonly Linear out_proj;
    private readonly AttentionPlan _plan;

    public MultiheadAttention(AttentionPlan plan) : base("MultiheadAttention")
    {
        _plan = plan;
        long width = plan.Width;
        in_proj_weight = nn.Parameter(torch.empty(3 * width, width));
        in_proj_bias = nn.Parameter(torch.zeros(3 * width));
        out_proj = nn.Linear(width, width);
        using (no_grad())
        {
            nn.init.xavier_uniform_(in_proj_weight);
            nn.init.zeros_(out_proj.bias!);
        }
        RegisterComponents();
    }

    public AttentionPlan Plan => _plan;

    /// <summary>Self-attention of [N, L, D].</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        long n = x.shape[0], l = x.shape[1], d = _plan.Width, h = _plan.Heads;
        var qkv = nn.functional.linear(x, in_proj_weight, in_proj_bias).view(n, l, 3, h, d / h).permute(2, 0, 3, 1, 4);
        var o = nn.functional.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], is_casual: _plan.Causal);
        return out_proj.call(o.transpose(1, 2).reshape(n, l, d)).MoveToOuterDisposeScope();
    }

    /// <summary>Queries <paramref name="query"/> [N, Lq, D] attend over <paramref name="x"/> [N, L, D]; returns [N, Lq, D].</summary>
    public Tensor Attend(Tensor query, Tensor x)
    {
        using var scope = NewDisposeScope();
        long n = x.shape[0], l = x.shape[1], lq = query.shape[1], d = _plan.Width, h = _plan.Heads;
        var q = nn.functional.linear(query, in_proj_weight.narrow(0, 0, d), in_proj_bias.narrow(0, 0, d)).view(n, lq, h, d / h).transpose(1, 2);
        var kv = nn.functional.linear(x, in_proj_weight.narrow(0, d, 2 * d), in_proj_bias.narrow(0, d, 2 * d)).view(n, l, 2, h, d / h).permute(2, 0, 3, 1, 4);
        var o = nn.functional.scaled_dot_product_attention(q, kv[0], kv[1]);
        return out_proj.call(o.transpose(1, 2).reshape(n, lq, d)).MoveToOuterDisposeScope();
    }

    /// <summary>Self-attention in ONNX, in the attention's scope: [N, L, D] → [N, L, D].</summary>
    public static OnnxValue Emit(OnnxGraphBuilder b, OnnxValue x, AttentionPlan p, int length)
    {
        long d = p.Width;
        var qkv = b.Add(b.MatMul(x, b.Transpose(b.Parameter("in_proj_weight", [3 * d, d]), 1, 0)), b.Parameter("in_proj_bias", [3 * d]));
        var parts = b.Split(qkv, -1, 3);
        var o = ScaledDotProduct(b, parts[0], parts[1], parts[2], p, p.Causal ? CausalMask(b, length) : null);
        using (b.Scope("out_proj")) return Layers.EmitLinear(b, o, d, d);
    }

    /// <summary>Queries attending over <paramref name="x"/> in ONNX (see <see cref="Attend"/>).</summary>
    public static OnnxValue EmitAttend(OnnxGraphBuilder b, OnnxValue query, OnnxValue x, AttentionPlan p)
    {
        long d = p.Width;
        var w = b.Split(b.Parameter("in_proj_weight", [3 * d, d]), 0, [d, 2 * d]);
        var bias = b.Split(b.Parameter("in_proj_bias", [3 * d]), 0, [d, 2 * d]);
        var q = b.Add(b.MatMul(query, b.Transpose(w[0], 1, 0)), bias[0]);
        var kv = b.Split(b.Add(b.MatMul(x, b.Transpose(w[1], 1, 0)), bias[1]), -1, 2);
        var o = ScaledDotProduct(b, q, kv[0], kv[1], p, null);
        using (b.Scope("out_proj")) return Layers.EmitLinear(b, o, d, d);
    }

    /// <summary>
    /// Multi-head scaled dot-product attention on projected [N, Lq, D] queries and [N, Lk, D] keys/values: q scaled by
    /// 1/√head_dim, <paramref name="mask"/> added to the [Lq, Lk] scores, softmax. Returns [N, Lq, D].
    /// </summary>
    public static OnnxValue ScaledDotProduct(OnnxGraphBuilder b, OnnxValue q, OnnxValue k, OnnxValue v, AttentionPlan p, OnnxValue? mask)
    {
        long hd = p.HeadDim, heads = p.Heads;
        var qh = b.Transpose(b.Reshape(q, 0, 0, heads, hd), 0, 2, 1, 3);   // [N, H, Lq, hd]
        var kh = b.Transpose(b.Reshape(k, 0, 0, heads, hd), 0, 2, 3, 1);   // [N, H, hd, Lk]
        var vh = b.Transpose(b.Reshape(v, 0, 0, heads, hd), 0, 2, 1, 3);   // [N, H, Lk, hd]
        qh = b.Mul(qh, b.Const(1f / MathF.Sqrt(hd)));
        var scores = b.MatMul(qh, kh);                                      // [N, H, Lq, Lk]
        if (mask is not null) scores = b.Add(scores, mask);
        var o = b.MatMul(b.Softmax(scores, -1), vh);                        // [N, H, Lq, hd]
        return b.Reshape(b.Transpose(o, 0, 2, 1, 3), 0, 0, p.Width);      // [N, Lq, D]
    }

    /// <summary>The additive causal mask: 0 on and below the diagonal, -inf above.</summary>
    public static OnnxValue CausalMask(OnnxGraphBuilder b, int length)
    {
        var m = new float[length * length];
        for (int i = 0; i < length; i++)
            for (int j = i + 1; j < length; j++) m[i * length + j] = float.NegativeInfinity;
        return b.Const(m, length, length);
    }
}
