using System.Globalization;
using ClipGen.Onnx;
using ClipGen.Specs;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ClipGen.Modules;

/// <summary>The MLP of a block: <c>c_fc</c> → activation → <c>c_proj</c>. Keys: <see cref="MlpPlan.WriteKeys"/>.</summary>
public sealed class Mlp : nn.Module<Tensor, Tensor>
{
    private readonly Linear c_fc;
    private readonly nn.Module<Tensor, Tensor> gelu;
    private readonly Linear c_proj;

    public Mlp(MlpPlan plan) : base("Mlp")
    {
        c_fc = nn.Linear(plan.Width, plan.Hidden);
        gelu = Activation.Create(plan.Activation);
        c_proj = nn.Linear(plan.Hidden, plan.Width);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return c_proj.call(gelu.call(c_fc.call(x))).MoveToOuterDisposeScope();
    }

    /// <summary>In the MLP's scope.</summary>
    public static OnnxValue Emit(OnnxGraphBuilder b, OnnxValue x, MlpPlan p)
    {
        using (b.Scope("c_fc")) x = Layers.EmitLinear(b, x, p.Hidden, p.Width);
        x = Activation.Emit(b, x, p.Activation);
        using (b.Scope("c_proj")) return Layers.EmitLinear(b, x, p.Width, p.Hidden);
    }
}

/// <summary>open_clip's LayerScale: <c>x * gamma</c>, <c>gamma</c> [D] initialised to the spec's value.</summary>
public sealed class LayerScale : nn.Module<Tensor, Tensor>
{
    private readonly Parameter gamma;

    public LayerScale(long width, double init) : base("LayerScale")
    {
        gamma = nn.Parameter(torch.full(width, init));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => x * gamma;

    /// <summary>In the LayerScale's scope.</summary>
    public static OnnxValue Emit(OnnxGraphBuilder b, OnnxValue x, long width) => b.Mul(x, b.Parameter("gamma", [width]));
}

/// <summary>
/// open_clip's <c>ResidualAttentionBlock</c> (OpenAI's, plus LayerScale): <c>x + ls_1(attn(ln_1(x)))</c>, then
/// <c>x + ls_2(mlp(ln_2(x)))</c>. Without LayerScale <c>ls_1</c>/<c>ls_2</c> are never created, so their keys do not exist.
/// Keys in every layout: <see cref="ResidualBlockPlan.WriteKeys"/>.
/// </summary>
public sealed class ResidualAttentionBlock : nn.Module<Tensor, Tensor>
{
    private readonly MultiheadAttention attn;
    private readonly LayerNorm ln_1;
    private readonly nn.Module<Tensor, Tensor> ls_1;
    private readonly Mlp mlp;
    private readonly LayerNorm ln_2;
    private readonly nn.Module<Tensor, Tensor> ls_2;

    public ResidualAttentionBlock(ResidualBlockPlan plan) : base("ResidualAttentionBlock")
    {
        attn = new MultiheadAttention(plan.Attention);
        ln_1 = Layers.LayerNorm(plan.Norm1);
        mlp = new Mlp(plan.Mlp);
        ln_2 = Layers.LayerNorm(plan.Norm2);
        ls_1 = plan.LayerScale is double a ? new LayerScale(plan.Width, a) : nn.Identity();
        ls_2 = plan.LayerScale is double c ? new LayerScale(plan.Width, c) : nn.Identity();
        register_module("attn", attn);
        register_module("ln_1", ln_1);
        if (plan.LayerScale is not null) register_module("ls_1", ls_1);
        register_module("mlp", mlp);
        register_module("ln_2", ln_2);
        if (plan.LayerScale is not null) register_module("ls_2", ls_2);
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        x = x + ls_1.call(attn.call(ln_1.call(x)));
        x = x + ls_2.call(mlp.call(ln_2.call(x)));
        return x.MoveToOuterDisposeScope();
    }

    /// <summary>In the block's scope: [N, L, D] → [N, L, D].</summary>
    public static OnnxValue Emit(OnnxGraphBuilder b, OnnxValue x, ResidualBlockPlan p, int length)
    {
        OnnxValue y;
        using (b.Scope("ln_1")) y = Layers.EmitLayerNorm(b, x, p.Norm1);
        using (b.Scope("attn")) y = MultiheadAttention.Emit(b, y, p.Attention, length);
        if (p.LayerScale is not null) using (b.Scope("ls_1")) y = LayerScale.Emit(b, y, p.Width);
        x = b.Add(x, y);
        using (b.Scope("ln_2")) y = Layers.EmitLayerNorm(b, x, p.Norm2);
        using (b.Scope("mlp")) y = Mlp.Emit(b, y, p.Mlp);
        if (p.LayerScale is not null) using (b.Scope("ls_2")) y = LayerScale.Emit(b, y, p.Width);
        return b.Add(x, y);
    }
}

/// <summary>A stack of residual attention blocks (<c>resblocks.N</c>), batch-first [N, L, D]. Keys: <see cref="TransformerPlan.WriteKeys"/>.</summary>
public sealed class Transformer : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<ResidualAttentionBlock> resblocks;

    public Transformer(TransformerPlan plan) : base("Transformer")
    {
        Plan = plan;
        resblocks = nn.ModuleList(Enumerable.Range(0, plan.Layers).Select(_ => new ResidualAttentionBlock(plan.Block)).ToArray());
        RegisterComponents();
    }

    public TransformerPlan Plan { get; }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        foreach (var block in resblocks) x = block.call(x);
        return x.MoveToOuterDisposeScope();
    }

    /// <summary>In the transformer's scope; <paramref name="length"/> is the sequence length (for the causal mask).</summary>
    public static OnnxValue Emit(OnnxGraphBuilder b, OnnxValue x, TransformerPlan p, int length)
    {
        for (int i = 0; i < p.Layers; i++)
            using (b.Scope("resblocks." + i.ToString(CultureInfo.InvariantCulture)))
                x = ResidualAttentionBlock.Emit(b, x, p.Block, length);
        return x;
    }
}
