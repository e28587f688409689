using ClipGen.Onnx;
using TorchSharp;

namespace ClipGen.Tests.Onnx;

/// <summary>The reference checkpoints with their hyper-parameters, inputs and outputs.</summary>
public sealed class OnnxFixture : IDisposable
{
    public required string Name { get; init; }
    public required ClipHyper Hyper { get; init; }
    public required SafeTensorsFile Model { get; init; }
    public required SafeTensorsFile Inputs { get; init; }
    public required SafeTensorsFile Outputs { get; init; }

    readonly Dictionary<string, torch.Tensor> _tensors = new(StringComparer.Ordinal);
    readonly object _gate = new();

    /// <summary>The state_dict lookup the emitters read weights through.</summary>
    public torch.Tensor Weight(string key)
    {
        lock (_gate)
        {
            if (_tensors.TryGetValue(key, out var t)) return t;
            if (!Model.Entries.TryGetValue(key, out var e)) throw new KeyNotFoundException($"{Name}: no weight '{key}'");
            return _tensors[key] = e.ToTensor();
        }
    }

    public float[] Pixels => Inputs["pixel_values"].Floats();
    public long[] Ids => Inputs["input_ids"].Longs();
    public int ImageBatch => (int)Inputs["pixel_values"].Shape[0];
    public int TextBatch => (int)Inputs["input_ids"].Shape[0];

    public void Dispose()
    {
        foreach (var t in _tensors.Values) t.Dispose();
    }

    public static readonly string[] All = ["openai/tiny-vit", "openai/tiny-rn", "open_clip/tiny-vit-gelu"];

    public static OnnxFixture Load(string name)
    {
        var dir = Fixtures.Path_("reference", name);
        var modelFile = name.StartsWith("open_clip", StringComparison.Ordinal) ? "open_clip_model.safetensors" : "model.safetensors";
        var text8 = new TextHyper(77, 49408, Width: 8, Layers: 2, Heads: 2, OutputDim: 32, Activation.QuickGelu);
        ClipHyper hyper = name switch
        {
            "openai/tiny-vit" => new(32, new VitHyper(32, PatchSize: 8, Width: 64, Layers: 2, Heads: 1, OutputDim: 32, Activation.QuickGelu), text8),
            "openai/tiny-rn" => new(32, new ResNetHyper(64, 1, 1, 1, 1, Width: 8, Heads: 4, OutputDim: 32), text8),
            "open_clip/tiny-vit-gelu" => new(32,
                new VitHyper(32, PatchSize: 8, Width: 64, Layers: 2, Heads: 2, OutputDim: 32, Activation.Gelu),
                new TextHyper(77, 49408, Width: 32, Layers: 2, Heads: 2, OutputDim: 32, Activation.Gelu)),
            _ => throw new ArgumentException(name),
        };
        return new OnnxFixture
        {
            Name = name,
            Hyper = hyper,
            Model = SafeTensorsFile.Read(Path.Combine(dir, modelFile)),
            Inputs = SafeTensorsFile.Read(Path.Combine(dir, "inputs.safetensors")),
            Outputs = SafeTensorsFile.Read(Path.Combine(dir, "outputs.safetensors")),
        };
    }
}

public static class Diff
{
    public static double MaxAbs(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        if (a.Length != b.Length) throw new ArgumentException($"lengths differ: {a.Length} vs {b.Length}");
        double m = 0;
        for (int i = 0; i < a.Length; i++)
        {
            double d = Math.Abs((double)a[i] - b[i]);
            if (double.IsNaN(d)) return double.NaN;
            m = Math.Max(m, d);
        }
        return m;
    }

    public static double Tolerance(ReadOnlySpan<float> reference, double rel = 1e-4)
    {
        double m = 1;
        foreach (var v in reference) m = Math.Max(m, Math.Abs(v));
        return rel * m;
    }
}
