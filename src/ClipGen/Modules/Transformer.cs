using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ClipGen.Modules;

/// <summary>The MLP of a residual block: <c>c_fc</c> → activation → <c>c_proj</c>.</summary>
/// <remarks>Its ONNX emission is inline in <see cref="Onnx.ClipOnnx.ResidualAttentionBlock"/> (<c>mlp.c_fc</c>, activation, <c>mlp.c_proj</c>).</remarks>
public sealed class Mlp : nn.Module<Tensor, Tensor>
{
    private readonly Linear c_fc;
    private readonly nn.Module<Tensor, Tensor> gelu;
    private readonly Linear c_proj;

    public Mlp(long width, long hidden, Specs.ActivationKind activation) : base("Mlp")
    {
        c_fc = nn.Linear(width, hidden);
        gelu = Activation.Create(activation);
        c_proj = nn.Linear(hidden, width);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => c_proj.call(gelu.call(c_fc.call(x)));
}

/// <summary>OpenAI's <c>ResidualAttentionBlock</c>: <c>x + attn(ln_1(x))</c>, then <c>x + mlp(ln_2(x))</c>.</summary>
/// <remarks>Its ONNX emission: <see cref="Onnx.ClipOnnx.ResidualAttentionBlock"/> (same keys, same numbers; house rule 7).</remarks>
public sealed class ResidualAttentionBlock : nn.Module<Tensor, Tensor>
{
    private readonly MultiheadAttention attn;
    private readonly LayerNorm ln_1;
    private readonly Mlp mlp;
    private readonly LayerNorm ln_2;

    public ResidualAttentionBlock(long width, int heads, long mlpWidth, Specs.ActivationKind activation, bool causal) : base("ResidualAttentionBlock")
    {
        attn = new MultiheadAttention(width, heads, causal);
        ln_1 = nn.LayerNorm(width, eps: 1e-5);
        mlp = new Mlp(width, mlpWidth, activation);
        ln_2 = nn.LayerNorm(width, eps: 1e-5);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        x = x + attn.call(ln_1.call(x));
        x = x + mlp.call(ln_2.call(x));
        return x.MoveToOuterDisposeScope();
    }
}

/// <summary>A stack of residual attention blocks (<c>resblocks.N</c>), batch-first [N, L, D].</summary>
/// <remarks>Its ONNX emission: <see cref="Onnx.ClipOnnx.Transformer"/> (same keys, same numbers; house rule 7).</remarks>
public sealed class Transformer : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<ResidualAttentionBlock> resblocks;

    public Transformer(long width, int layers, int heads, long mlpWidth, Specs.ActivationKind activation, bool causal) : base("Transformer")
    {
        Width = width;
        resblocks = nn.ModuleList(Enumerable.Range(0, layers).Select(_ => new ResidualAttentionBlock(width, heads, mlpWidth, activation, causal)).ToArray());
        RegisterComponents();
    }

    public long Width { get; }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        foreach (var block in resblocks) x = block.call(x);
        return x.MoveToOuterDisposeScope();
    }
}
