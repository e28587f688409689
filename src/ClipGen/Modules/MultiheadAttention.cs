using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ClipGen.Modules;

/// <summary>
/// <c>nn.MultiheadAttention</c> with PyTorch's parameter names (<c>in_proj_weight</c>, <c>in_proj_bias</c>, <c>out_proj</c>),
/// written in managed code over batch-first input [N, L, D]. Optionally causal (the text tower's mask).
/// </summary>
/// <remarks>Its ONNX emission: <see cref="Onnx.ClipOnnx.MultiheadAttention"/> (same keys, same numbers; house rule 7).</remarks>
public sealed class MultiheadAttention : nn.Module<Tensor, Tensor>
{
    private readonly Parameter in_proj_weight;
    private readonly Parameter in_proj_bias;
    private readonly Linear out_proj;
    private readonly int _heads;
    private readonly bool _causal;

    public MultiheadAttention(long width, int heads, bool causal) : base("MultiheadAttention")
    {
        _heads = heads;
        _causal = causal;
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

    public int Heads => _heads;
    public bool Causal => _causal;

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        long n = x.shape[0], l = x.shape[1], d = x.shape[2], hd = d / _heads;
        var qkv = nn.functional.linear(x, in_proj_weight, in_proj_bias).view(n, l, 3, _heads, hd).permute(2, 0, 3, 1, 4);
        var q = qkv[0];
        var k = qkv[1];
        var v = qkv[2];
        var o = nn.functional.scaled_dot_product_attention(q, k, v, is_casual: _causal);
        o = o.transpose(1, 2).reshape(n, l, d);
        return out_proj.call(o).MoveToOuterDisposeScope();
    }
}
