using ClipGen.Onnx;
using ClipGen.Specs;

namespace ClipGen.Tests.Onnx;

/// <summary>The reference checkpoints with their plans (from the test specs), inputs and outputs.</summary>
public sealed class OnnxFixture : IDisposable
{
    public required string Name { get; init; }
    public required ClipPlan Plan { get; init; }
    public required SafeTensorsFile Model { get; init; }
    public required SafeTensorsFile Inputs { get; init; }
    public required SafeTensorsFile Outputs { get; init; }

    /// <summary>The state_dict lookup the emitters read weights through (straight from the file's bytes).</summary>
    public OnnxWeight Weight(string key)
    {
        if (!Model.Entries.TryGetValue(key, out var e)) throw new KeyNotFoundException($"{Name}: no weight '{key}'");
        return e.DType switch
        {
            "F32" => new OnnxWeight(e.Shape, OnnxElementType.Float, e.Data),
            "I64" => new OnnxWeight(e.Shape, OnnxElementType.Int64, e.Data),
            _ => throw new InvalidDataException($"{Name}: '{key}' is {e.DType}"),
        };
    }

    public float[] Pixels => Inputs["pixel_values"].Floats();
    public long[] Ids => Inputs["input_ids"].Longs();
    public int ImageBatch => (int)Inputs["pixel_values"].Shape[0];
    public int TextBatch => (int)Inputs["input_ids"].Shape[0];

    public void Dispose() { }

    public static readonly string[] All = ["openai/tiny-vit", "openai/tiny-rn", "open_clip/tiny-vit-gelu"];

    public static OnnxFixture Load(string name)
    {
        var dir = Fixtures.Path_("reference", name);
        var modelFile = name.StartsWith("open_clip", StringComparison.Ordinal) ? "open_clip_model.safetensors" : "model.safetensors";
        var plan = name switch
        {
            "openai/tiny-vit" => Models.TinyVit.ModelPlan,
            "openai/tiny-rn" => Models.TinyRn.ModelPlan,
            "open_clip/tiny-vit-gelu" => Models.TinyVitGelu.ModelPlan,
            _ => throw new ArgumentException(name),
        };
        return new OnnxFixture
        {
            Name = name,
            Plan = plan,
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
