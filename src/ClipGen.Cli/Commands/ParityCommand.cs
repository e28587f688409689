using System.CommandLine;
using System.Globalization;
using ClipGen.Backends;
using ClipGen.Modeling;
using ClipGen.Onnx;
using TorchSharp;
using static TorchSharp.torch;

namespace ClipGen.Cli.Commands;

/// <summary><c>clipgen parity</c>: runs both backends on the same random inputs and prints how far apart they are.</summary>
sealed class ParityCommand : CliCommand
{
    readonly Option<string?> _model = CliOptions.Text("--model", "name|alias|spec.yaml", "the model's spec");
    readonly Option<string?> _weights = CliOptions.Text("--weights", "checkpoint", "the weights");
    readonly Option<int> _batch = CliOptions.Int("--batch", 2, "random inputs per batch", min: 1);
    readonly Option<int> _seed = CliOptions.Int("--seed", 0, "seed of the random inputs");
    readonly Option<OnnxPrecision> _precision = CliOptions.Parsed("--precision", "fp32|int8", "int8: compare int8 with fp32 ONNX Runtime instead", AppHelpers.ParsePrecision, OnnxPrecision.Float32);

    public ParityCommand() : base("parity", "compare the TorchSharp and ONNX Runtime backends (or int8 and fp32 ONNX Runtime) on random inputs")
    {
        Required(_model);
        Required(_weights);
        Add(_batch);
        Add(_seed);
        Add(_precision);
    }

    public override int Run(ParseResult args, TextWriter stdout, TextWriter stderr)
    {
        var modelArg = Value(args, _model);
        var weights = Value(args, _weights);
        int batch = args.GetValue(_batch);
        int seed = args.GetValue(_seed);
        var precision = args.GetValue(_precision);

        using var model = ClipModelFactory.Load(modelArg, weights);
        var spec = model.Spec;
        using var scope = NewDisposeScope();
        var (pixels, ids) = RandomInputs(spec, batch, seed);
        if (precision == OnnxPrecision.Int8) return Int8(model, pixels, ids, batch, seed, stdout);
        var results = new Dictionary<BackendKind, Tensor[]>();
        foreach (var kind in new[] { BackendKind.Torch, BackendKind.Onnx })
        {
            using var backend = ClipBackends.Create(model, kind);
            var img = backend.EncodeImage(pixels);
            var txt = backend.EncodeText(ids);
            var (perImage, perText) = backend.Logits(img, txt);
            results[kind] = [img, txt, perImage, perText];
        }
        string[] names = ["image_features", "text_features", "logits_per_image", "logits_per_text"];
        stdout.WriteLine($"{spec.Name}: batch {batch}, seed {seed}; TorchSharp vs ONNX Runtime");
        stdout.WriteLine($"{"output",-18} {"max_abs_diff",14} {"mean_abs_diff",14} {"max_abs_ref",12}");
        for (int i = 0; i < names.Length; i++)
        {
            var t = results[BackendKind.Torch][i].to(ScalarType.Float64);
            var o = results[BackendKind.Onnx][i].to(ScalarType.Float64);
            var d = (t - o).abs();
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{names[i],-18} {d.max().item<double>(),14:E3} {d.mean().item<double>(),14:E3} {t.abs().max().item<double>(),12:G4}"));
        }
        return 0;
    }

    /// <summary>cosine(int8, fp32) of every image and text embedding, both on ONNX Runtime.</summary>
    static int Int8(ClipModule model, Tensor pixels, Tensor ids, int batch, int seed, TextWriter stdout)
    {
        using var fp32 = ClipBackends.Create(model, BackendKind.Onnx);
        using var int8 = ClipBackends.Create(model, BackendKind.Onnx, new ClipBackendOptions { Precision = OnnxPrecision.Int8 });
        stdout.WriteLine($"{model.Spec.Name}: batch {batch}, seed {seed}; ONNX Runtime int8 vs fp32, cosine similarity per embedding");
        double min = 1;
        foreach (var (name, a, b) in new[]
                 {
                     ("image_features", fp32.EncodeImage(pixels), int8.EncodeImage(pixels)),
                     ("text_features", fp32.EncodeText(ids), int8.EncodeText(ids)),
                 })
        {
            var cos = nn.functional.cosine_similarity(a.to(ScalarType.Float64), b.to(ScalarType.Float64), 1).data<double>().ToArray();
            min = Math.Min(min, cos.Min());
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{name,-15} min {cos.Min():F6}  mean {cos.Average():F6}  each {string.Join(" ", cos.Select(c => c.ToString("F6", CultureInfo.InvariantCulture)))}"));
        }
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"lowest cosine {min:F6} (ClipGen's tested bound: 0.99)"));
        return 0;
    }

    /// <summary>Pixels ~ N(0,1) and token rows [SOT, random ids…, EOT, 0…] of random lengths, both from <paramref name="seed"/>.</summary>
    internal static (Tensor Pixels, Tensor Ids) RandomInputs(Specs.ClipSpec spec, int batch, int seed)
    {
        var gen = new Generator((ulong)seed);
        int r = spec.Vision.ImageSize, c = spec.Text.ContextLength, vocab = spec.Text.VocabSize;
        var pixels = randn([batch, 3, r, r], generator: gen);
        var rng = new Random(seed);
        var ids = new long[batch * c];
        for (int b = 0; b < batch; b++)
        {
            int len = rng.Next(2, c + 1);
            ids[b * c] = vocab - 2;
            for (int j = 1; j < len - 1; j++) ids[b * c + j] = rng.Next(1, vocab - 2);
            ids[b * c + len - 1] = vocab - 1;
        }
        return (pixels, tensor(ids, [batch, c]));
    }
}
