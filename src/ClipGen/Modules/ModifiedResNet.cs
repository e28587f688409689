using System.Globalization;
using ClipGen.Onnx;
using ClipGen.Specs;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ClipGen.Modules;

/// <summary>
/// OpenAI's ResNet <c>Bottleneck</c>: all convolutions have stride 1; a stride > 1 is an average pool after the second
/// convolution (anti-aliased), and the downsample branch is AvgPool → 1×1 conv → BatchNorm (<c>downsample.0</c>,
/// <c>downsample.1</c>). Keys: <see cref="BottleneckPlan.WriteKeys"/>.
/// </summary>
public sealed class Bottleneck : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d conv1;
    private readonly BatchNorm2d bn1;
    private readonly ReLU relu1;
    private readonly Conv2d conv2;
    private readonly BatchNorm2d bn2;
    private readonly ReLU relu2;
    private readonly nn.Module<Tensor, Tensor> avgpool;
    private readonly Conv2d conv3;
    private readonly BatchNorm2d bn3;
    private readonly ReLU relu3;
    private readonly nn.Module<Tensor, Tensor>? downsample;

    public Bottleneck(BottleneckPlan plan) : base("Bottleneck")
    {
        long inplanes = plan.Inplanes, planes = plan.Planes, wide = planes * BottleneckPlan.Expansion;
        conv1 = nn.Conv2d(inplanes, planes, 1, bias: false);
        bn1 = nn.BatchNorm2d(planes);
        relu1 = nn.ReLU(inplace: true);
        conv2 = nn.Conv2d(planes, planes, 3, padding: 1, bias: false);
        bn2 = nn.BatchNorm2d(planes);
        relu2 = nn.ReLU(inplace: true);
        avgpool = plan.Stride > 1 ? nn.AvgPool2d(plan.Stride) : nn.Identity();
        conv3 = nn.Conv2d(planes, wide, 1, bias: false);
        bn3 = nn.BatchNorm2d(wide);
        relu3 = nn.ReLU(inplace: true);
        if (plan.Downsample)
        {
            downsample = nn.Sequential(
                ("-1", nn.AvgPool2d(plan.Stride)),
                ("0", nn.Conv2d(inplanes, wide, 1, stride: 1, bias: false)),
                ("1", nn.BatchNorm2d(wide)));
        }
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var identity = x;
        var o = relu1.call(bn1.call(conv1.call(x)));
        o = relu2.call(bn2.call(conv2.call(o)));
        o = avgpool.call(o);
        o = bn3.call(conv3.call(o));
        if (downsample is not null) identity = downsample.call(x);
        o = relu3.call(o + identity);
        return o.MoveToOuterDisposeScope();
    }

    /// <summary>In the block's scope.</summary>
    public static OnnxValue Emit(OnnxGraphBuilder b, OnnxValue x, BottleneckPlan p)
    {
        long planes = p.Planes, wide = planes * BottleneckPlan.Expansion;
        OnnxValue o;
        using (b.Scope("conv1")) o = Layers.EmitConv2d(b, x, planes, p.Inplanes, 1);
        using (b.Scope("bn1")) o = b.Relu(Layers.EmitBatchNorm2d(b, o, planes));
        using (b.Scope("conv2")) o = Layers.EmitConv2d(b, o, planes, planes, 3, padding: 1);
        using (b.Scope("bn2")) o = b.Relu(Layers.EmitBatchNorm2d(b, o, planes));
        if (p.Stride > 1) o = Layers.EmitAvgPool2d(b, o, p.Stride);
        using (b.Scope("conv3")) o = Layers.EmitConv2d(b, o, wide, planes, 1);
        using (b.Scope("bn3")) o = Layers.EmitBatchNorm2d(b, o, wide);
        var identity = x;
        if (p.Downsample)
        {
            using (b.Scope("downsample"))
            {
                if (p.Stride > 1) identity = Layers.EmitAvgPool2d(b, identity, p.Stride);     // downsample."-1"
                using (b.Scope("0")) identity = Layers.EmitConv2d(b, identity, wide, p.Inplanes, 1);
                using (b.Scope("1")) identity = Layers.EmitBatchNorm2d(b, identity, wide);
            }
        }
        return b.Relu(b.Add(o, identity));
    }
}

/// <summary>
/// OpenAI's <c>AttentionPool2d</c>: the mean token is prepended to the flattened feature map, positional embeddings added, and
/// one multi-head attention query (the mean token) attends over all positions, with separate <c>q_proj</c>/<c>k_proj</c>/
/// <c>v_proj</c> and an output projection <c>c_proj</c>. Keys: <see cref="AttentionPool2dPlan.WriteKeys"/>.
/// </summary>
public sealed class AttentionPool2d : nn.Module<Tensor, Tensor>
{
    private readonly Parameter positional_embedding;
    private readonly Linear k_proj;
    private readonly Linear q_proj;
    private readonly Linear v_proj;
    private readonly Linear c_proj;
    private readonly int _heads;

    public AttentionPool2d(AttentionPool2dPlan plan) : base("AttentionPool2d")
    {
        _heads = plan.Heads;
        positional_embedding = nn.Parameter(torch.randn(plan.SpacialDim * plan.SpacialDim + 1, plan.EmbedDim) / Math.Sqrt(plan.EmbedDim));
        k_proj = nn.Linear(plan.EmbedDim, plan.EmbedDim);
        q_proj = nn.Linear(plan.EmbedDim, plan.EmbedDim);
        v_proj = nn.Linear(plan.EmbedDim, plan.EmbedDim);
        c_proj = nn.Linear(plan.EmbedDim, plan.OutputDim);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        long n = x.shape[0], c = x.shape[1], hd = c / _heads;
        x = x.flatten(2).transpose(1, 2);                                  // [N, HW, C]
        x = torch.cat([x.mean([1], keepdim: true), x], dim: 1);            // [N, HW+1, C]
        x = x + positional_embedding.to(x.dtype);
        long l = x.shape[1];
        var q = q_proj.call(x.narrow(1, 0, 1)).view(n, 1, _heads, hd).transpose(1, 2);
        var k = k_proj.call(x).view(n, l, _heads, hd).transpose(1, 2);
        var v = v_proj.call(x).view(n, l, _heads, hd).transpose(1, 2);
        var o = nn.functional.scaled_dot_product_attention(q, k, v);      // [N, heads, 1, hd]
        o = o.transpose(1, 2).reshape(n, c);
        return c_proj.call(o).MoveToOuterDisposeScope();
    }

    /// <summary>In the pool's scope: [N, C, H, W] → [N, OutputDim].</summary>
    public static OnnxValue Emit(OnnxGraphBuilder b, OnnxValue x, AttentionPool2dPlan p)
    {
        long e = p.EmbedDim;
        x = b.Transpose(b.Reshape(x, 0, 0, -1), 0, 2, 1);                               // [N, HW, C]
        x = b.Concat(1, b.ReduceMean(x, [1], keepDims: true), x);                      // [N, HW+1, C]
        x = b.Add(x, b.Parameter("positional_embedding", [(long)p.SpacialDim * p.SpacialDim + 1, e]));
        var first = b.Slice(x, [0], [1], [1]);                                         // [N, 1, C]
        OnnxValue q, k, v, o;
        using (b.Scope("q_proj")) q = Layers.EmitLinear(b, first, e, e);
        using (b.Scope("k_proj")) k = Layers.EmitLinear(b, x, e, e);
        using (b.Scope("v_proj")) v = Layers.EmitLinear(b, x, e, e);
        o = MultiheadAttention.ScaledDotProduct(b, q, k, v, new AttentionPlan(p.EmbedDim, p.Heads, Causal: false), null);   // [N, 1, C]
        using (b.Scope("c_proj")) o = Layers.EmitLinear(b, o, p.OutputDim, e);        // [N, 1, out]
        return b.Squeeze(o, 1);
    }
}

/// <summary>
/// OpenAI's <c>ModifiedResNet</c>: a 3-convolution stem with an average pool, four Bottleneck stages (<c>layer1</c>..<c>layer4</c>,
/// strides 1, 2, 2, 2) and an attention pool instead of a global average pool. Keys: <see cref="ResNetPlan.WriteKeys"/>.
/// </summary>
public sealed class ModifiedResNet : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d conv1;
    private readonly BatchNorm2d bn1;
    private readonly ReLU relu1;
    private readonly Conv2d conv2;
    private readonly BatchNorm2d bn2;
    private readonly ReLU relu2;
    private readonly Conv2d conv3;
    private readonly BatchNorm2d bn3;
    private readonly ReLU relu3;
    private readonly AvgPool2d avgpool;
    private readonly Sequential layer1;
    private readonly Sequential layer2;
    private readonly Sequential layer3;
    private readonly Sequential layer4;
    private readonly AttentionPool2d attnpool;

    public ModifiedResNet(ResNetPlan plan) : base("ModifiedResNet")
    {
        Plan = plan;
        long width = plan.Width;
        conv1 = nn.Conv2d(3, width / 2, 3, stride: 2, padding: 1, bias: false);
        bn1 = nn.BatchNorm2d(width / 2);
        relu1 = nn.ReLU(inplace: true);
        conv2 = nn.Conv2d(width / 2, width / 2, 3, padding: 1, bias: false);
        bn2 = nn.BatchNorm2d(width / 2);
        relu2 = nn.ReLU(inplace: true);
        conv3 = nn.Conv2d(width / 2, width, 3, padding: 1, bias: false);
        bn3 = nn.BatchNorm2d(width);
        relu3 = nn.ReLU(inplace: true);
        avgpool = nn.AvgPool2d(2);
        Sequential Stage(int s) => nn.Sequential(plan.Stages[s].Select(p => (nn.Module<Tensor, Tensor>)new Bottleneck(p)).ToList());
        layer1 = Stage(0);
        layer2 = Stage(1);
        layer3 = Stage(2);
        layer4 = Stage(3);
        attnpool = new AttentionPool2d(plan.AttnPool);
        RegisterComponents();
    }

    public ResNetPlan Plan { get; }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        x = relu1.call(bn1.call(conv1.call(x)));
        x = relu2.call(bn2.call(conv2.call(x)));
        x = relu3.call(bn3.call(conv3.call(x)));
        x = avgpool.call(x);
        x = layer1.call(x);
        x = layer2.call(x);
        x = layer3.call(x);
        x = layer4.call(x);
        return attnpool.call(x).MoveToOuterDisposeScope();
    }

    /// <summary>The tower in ONNX, in the <c>visual</c> scope: [N, 3, R, R] → [N, OutputDim].</summary>
    public static OnnxValue Emit(OnnxGraphBuilder b, OnnxValue pixels, ResNetPlan p)
    {
        long w = p.Width;
        var x = pixels;
        using (b.Scope("conv1")) x = Layers.EmitConv2d(b, x, w / 2, 3, 3, stride: 2, padding: 1);
        using (b.Scope("bn1")) x = b.Relu(Layers.EmitBatchNorm2d(b, x, w / 2));
        using (b.Scope("conv2")) x = Layers.EmitConv2d(b, x, w / 2, w / 2, 3, padding: 1);
        using (b.Scope("bn2")) x = b.Relu(Layers.EmitBatchNorm2d(b, x, w / 2));
        using (b.Scope("conv3")) x = Layers.EmitConv2d(b, x, w, w / 2, 3, padding: 1);
        using (b.Scope("bn3")) x = b.Relu(Layers.EmitBatchNorm2d(b, x, w));
        x = Layers.EmitAvgPool2d(b, x, 2);
        for (int s = 0; s < p.Stages.Count; s++)
            for (int i = 0; i < p.Stages[s].Count; i++)
                using (b.Scope("layer" + (s + 1).ToString(CultureInfo.InvariantCulture)))
                using (b.Scope(i.ToString(CultureInfo.InvariantCulture)))
                    x = Bottleneck.Emit(b, x, p.Stages[s][i]);
        using (b.Scope("attnpool")) return AttentionPool2d.Emit(b, x, p.AttnPool);
    }
}

/// <summary>The image tower of a plan: the TorchSharp module and its ONNX emission.</summary>
public static class VisionTower
{
    public static nn.Module<Tensor, Tensor> Create(VisionPlan plan) => plan switch
    {
        VitPlan v => new VisionTransformer(v),
        ResNetPlan r => new ModifiedResNet(r),
        _ => throw new NotSupportedException($"unknown image tower {plan.GetType().Name}"),
    };

    /// <summary>In the <c>visual</c> scope: [N, 3, R, R] → [N, OutputDim].</summary>
    public static OnnxValue Emit(OnnxGraphBuilder b, OnnxValue pixels, VisionPlan plan) => plan switch
    {
        VitPlan v => VisionTransformer.Emit(b, pixels, v),
        ResNetPlan r => ModifiedResNet.Emit(b, pixels, r),
        _ => throw new NotSupportedException($"unknown image tower {plan.GetType().Name}"),
    };
}
