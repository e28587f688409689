using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ClipGen.Modules;

/// <summary>
/// OpenAI's ResNet <c>Bottleneck</c>: all convolutions have stride 1; a stride > 1 is an average pool after the
/// second convolution (anti-aliased), and the downsample branch is AvgPool → 1×1 conv → BatchNorm
/// (<c>downsample.0</c>, <c>downsample.1</c>).
/// </summary>
/// <remarks>Its ONNX emission: <see cref="Onnx.ClipOnnx.Bottleneck"/> (same keys, same numbers; house rule 7).</remarks>
public sealed class Bottleneck : nn.Module<Tensor, Tensor>
{
    public const int Expansion = 4;

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

    public Bottleneck(long inplanes, long planes, int stride) : base("Bottleneck")
    {
        conv1 = nn.Conv2d(inplanes, planes, 1, bias: false);
        bn1 = nn.BatchNorm2d(planes);
        relu1 = nn.ReLU(inplace: true);
        conv2 = nn.Conv2d(planes, planes, 3, padding: 1, bias: false);
        bn2 = nn.BatchNorm2d(planes);
        relu2 = nn.ReLU(inplace: true);
        avgpool = stride > 1 ? nn.AvgPool2d(stride) : nn.Identity();
        conv3 = nn.Conv2d(planes, planes * Expansion, 1, bias: false);
        bn3 = nn.BatchNorm2d(planes * Expansion);
        relu3 = nn.ReLU(inplace: true);
        if (stride > 1 || inplanes != planes * Expansion)
        {
            downsample = nn.Sequential(
                ("-1", nn.AvgPool2d(stride)),
                ("0", nn.Conv2d(inplanes, planes * Expansion, 1, stride: 1, bias: false)),
                ("1", nn.BatchNorm2d(planes * Expansion)));
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
}

/// <summary>
/// OpenAI's <c>AttentionPool2d</c>: the mean token is prepended to the flattened feature map, positional embeddings
/// added, and one multi-head attention query (the mean token) attends over all positions, with separate
/// <c>q_proj</c>/<c>k_proj</c>/<c>v_proj</c> and an output projection <c>c_proj</c>.
/// </summary>
/// <remarks>Its ONNX emission: <see cref="Onnx.ClipOnnx.AttentionPool2d"/> (same keys, same numbers; house rule 7).</remarks>
public sealed class AttentionPool2d : nn.Module<Tensor, Tensor>
{
    private readonly Parameter positional_embedding;
    private readonly Linear k_proj;
    private readonly Linear q_proj;
    private readonly Linear v_proj;
    private readonly Linear c_proj;
    private readonly int _heads;

    public AttentionPool2d(int spacialDim, int embedDim, int heads, int outputDim) : base("AttentionPool2d")
    {
        _heads = heads;
        positional_embedding = nn.Parameter(torch.randn(spacialDim * spacialDim + 1, embedDim) / Math.Sqrt(embedDim));
        k_proj = nn.Linear(embedDim, embedDim);
        q_proj = nn.Linear(embedDim, embedDim);
        v_proj = nn.Linear(embedDim, embedDim);
        c_proj = nn.Linear(embedDim, outputDim);
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
}

/// <summary>
/// OpenAI's <c>ModifiedResNet</c>: a 3-convolution stem with an average pool, four Bottleneck stages
/// (<c>layer1</c>..<c>layer4</c>, strides 1, 2, 2, 2) and an attention pool instead of a global average pool.
/// </summary>
/// <remarks>Its ONNX emission: <see cref="Onnx.ClipOnnx.EmitModifiedResNet"/> (same keys, same numbers; house rule 7).</remarks>
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

    public ModifiedResNet(int[] layers, int outputDim, int heads, int imageSize, int width) : base("ModifiedResNet")
    {
        if (layers.Length != 4) throw new ArgumentException("a ModifiedResNet has four stages", nameof(layers));
        ImageSize = imageSize;
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

        long inplanes = width;
        Sequential MakeLayer(long planes, int blocks, int stride)
        {
            var list = new List<nn.Module<Tensor, Tensor>> { new Bottleneck(inplanes, planes, stride) };
            inplanes = planes * Bottleneck.Expansion;
            for (int i = 1; i < blocks; i++) list.Add(new Bottleneck(inplanes, planes, 1));
            return nn.Sequential(list);
        }
        layer1 = MakeLayer(width, layers[0], 1);
        layer2 = MakeLayer(width * 2, layers[1], 2);
        layer3 = MakeLayer(width * 4, layers[2], 2);
        layer4 = MakeLayer(width * 8, layers[3], 2);
        attnpool = new AttentionPool2d(imageSize / 32, width * 32, heads, outputDim);
        RegisterComponents();
    }

    public int ImageSize { get; }

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
}
