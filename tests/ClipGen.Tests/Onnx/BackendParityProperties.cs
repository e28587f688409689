using ClipGen.Backends;
using ClipGen.Modeling;
using ClipGen.Onnx;
using ClipGen.Specs;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ClipGen.Tests.Onnx;

/// <summary>
/// A small valid CLIP spec of any family, its weights and inputs, described by small non-negative ints so that FsCheck shrinks
/// it field by field towards the simplest model (an OpenAI-style ViT, QuickGELU, 1 head, 1 layer, …). Every field is an index;
/// 0 is the simplest. The family fields cover the spec language's feature space: class token, pooling (class token, mean,
/// attention head), patch bias, ln_pre, final_ln_after_pool, LayerScale, projections, activations (QuickGELU, GELU, GELU tanh),
/// LayerNorm eps, text pooling (argmax, eos, last, first, mean), causal mask, timm / CustomTextCLIP layouts and the sigmoid loss.
/// A combination the format forbids is mapped to the nearest valid one, so every seed is a valid spec.
/// </summary>
public sealed record SpecSeed(
    int ResNet, int TextAct,
    int VisionHeadsLog, int VisionHeadDimLog, int VisionLayers, int PatchLog, int Grid, int MlpIdx,
    int ResNetWidthLog, int ResNetLayers, int PoolHeadsLog, int ResNetSize,
    int TextHeadsLog, int TextHeadDimLog, int TextLayers, int Context, int Vocab, int EmbedLog,
    int Batch, int Seed,
    int NoClassToken, int Pool, int PatchBias, int NoLnPre, int LnAfterPool, int LayerScale, int NoVisionProj, int VisionAct,
    int TextPool, int NoCausal, int TextProj, int Eps, int TextLayerScale, int Timm, int CustomText, int Siglip)
{
    /// <summary>Inclusive upper bounds of the fields, in declaration order.</summary>
    public static readonly int[] Max = [1, 2, 2, 2, 2, 2, 3, 2, 2, 1, 2, 1, 2, 2, 2, 15, 3, 3, 3, 1000,
        1, 2, 1, 1, 1, 1, 1, 2, 4, 1, 2, 1, 1, 1, 1, 1];

    public int[] Fields => [ResNet, TextAct, VisionHeadsLog, VisionHeadDimLog, VisionLayers, PatchLog, Grid, MlpIdx, ResNetWidthLog, ResNetLayers, PoolHeadsLog, ResNetSize,
        TextHeadsLog, TextHeadDimLog, TextLayers, Context, Vocab, EmbedLog, Batch, Seed,
        NoClassToken, Pool, PatchBias, NoLnPre, LnAfterPool, LayerScale, NoVisionProj, VisionAct, TextPool, NoCausal, TextProj, Eps, TextLayerScale, Timm, CustomText, Siglip];

    public static SpecSeed From(int[] f) => new(f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[10], f[11], f[12], f[13], f[14], f[15], f[16], f[17], f[18], f[19],
        f[20], f[21], f[22], f[23], f[24], f[25], f[26], f[27], f[28], f[29], f[30], f[31], f[32], f[33], f[34], f[35]);

    public int BatchSize => Batch + 1;

    static readonly ActivationKind[] Acts = [ActivationKind.QuickGelu, ActivationKind.Gelu, ActivationKind.GeluTanh];
    static readonly TextPooling[] TextPools = [TextPooling.Argmax, TextPooling.Eos, TextPooling.Last, TextPooling.First, TextPooling.Mean];

    public ClipSpec ToSpec()
    {
        bool resnet = ResNet == 1;
        int embed = 4 << EmbedLog;                                   // 4..32
        int textHeads = 1 << TextHeadsLog, textWidth = textHeads * (2 << TextHeadDimLog);
        double eps = Eps == 1 ? 1e-6 : 1e-5;
        VisionSpec vision;
        if (resnet)
        {
            int width = 2 << ResNetWidthLog;                         // 2, 4, 8: stem width/2 ≥ 1, pool at width·32
            int heads = 1 << PoolHeadsLog;
            vision = new VisionSpec
            {
                Kind = VisionKind.ModifiedResNet, ImageSize = 32 * (ResNetSize + 1), Width = width,
                Layers = new[] { 1 + ResNetLayers, 1, 1 + ResNetLayers, 1 }.ToEquatableArray(), HeadWidth = width * 32 / heads, MlpRatio = 4,
                Activation = Acts[TextAct],
            };
        }
        else
        {
            int heads = 1 << VisionHeadsLog, width = heads * (4 << VisionHeadDimLog), patch = 2 << PatchLog;
            bool classToken = NoClassToken == 0;
            var pool = Pool switch { 2 => VisionPooling.Attention, 1 => VisionPooling.Mean, _ => classToken ? VisionPooling.ClassToken : VisionPooling.Mean };
            bool patchBias = PatchBias == 1, lnPre = NoLnPre == 0;
            bool timm = Timm == 1 && patchBias != lnPre;             // timm's ViT has a patch bias exactly when it has no pre-norm
            bool proj = NoVisionProj == 0;
            if (!proj) embed = width;                                // no projection: the tower's width is the embedding
            vision = new VisionSpec
            {
                Kind = VisionKind.VisionTransformer, ImageSize = patch * (Grid + 1), PatchSize = patch, Width = width,
                Layers = new[] { 1 + VisionLayers }.ToEquatableArray(), HeadWidth = width / heads, MlpRatio = new[] { 4.0, 2.0, 2.5 }[MlpIdx],
                Activation = Acts[VisionAct], ClassToken = classToken, Pool = pool, PatchBias = patchBias, LnPre = lnPre,
                FinalLnAfterPool = LnAfterPool == 1, LayerScale = LayerScale == 1 ? 0.1 : null, NormEps = eps,
                Proj = proj ? ProjectionKind.Linear : ProjectionKind.None, TimmModelName = timm ? "vit_base_patch16_siglip_224" : "",
            };
        }
        // A text tower without projection needs width = embed_dim; otherwise project.
        var textProj = TextProj == 2 && textWidth != embed ? 0 : TextProj;
        return new ClipSpec
        {
            Name = "prop", ClassName = "Prop", EmbedDim = embed,
            InitLogitScale = SpecDefaults.ClipInitLogitScale, Loss = Siglip == 1 ? LossKind.SigLip : LossKind.Clip, InitLogitBias = Siglip == 1 ? -5 : SpecDefaults.InitLogitBias,
            CustomText = CustomText == 1,
            Vision = vision,
            Text = new TextSpec
            {
                ContextLength = 2 + Context, VocabSize = 8 << Vocab, Width = textWidth, Heads = textHeads, Layers = 1 + TextLayers,
                MlpRatio = 4, Pooling = TextPools[TextPool], EosId = (8 << Vocab) - 1, PadId = 0, Activation = Acts[TextAct],
                CausalMask = NoCausal == 0, Proj = textProj == 2 ? ProjectionKind.None : ProjectionKind.Linear, ProjBias = textProj == 1,
                NormEps = eps, LayerScale = TextLayerScale == 1 ? 0.1 : null,
            },
            Tokenizer = new TokenizerSpec { Kind = "bytes" },
            Preprocess = new PreprocessSpec { ImageSize = vision.ImageSize, Mean = new[] { 0.5, 0.5, 0.5 }.ToEquatableArray(), Std = new[] { 0.5, 0.5, 0.5 }.ToEquatableArray() },
        };
    }

    public override string ToString()
    {
        var s = ToSpec();
        var v = s.Vision;
        var tower = v.Kind == VisionKind.VisionTransformer
            ? $"ViT {v.ImageSize}px/{v.PatchSize} w{v.Width} h{ClipPlan.From(s).VisionHeads} L{v.Layers[0]} mlp×{v.MlpRatio} {SpecWords.Activation[v.Activation]}" +
              $"{(v.ClassToken ? "" : " no-cls")} pool:{SpecWords.VisionPooling[v.Pool]}{(v.PatchBias ? " patch-bias" : "")}{(v.LnPre ? "" : " no-ln_pre")}" +
              $"{(v.FinalLnAfterPool ? " ln-after-pool" : "")}{(v.LayerScale is null ? "" : " ls")}{(v.Proj == ProjectionKind.None ? " no-proj" : "")}{(v.TimmModelName.Length > 0 ? " timm" : "")}"
            : $"RN {v.ImageSize}px w{v.Width} [{string.Join(",", v.Layers)}] pool heads {ClipPlan.From(s).VisionHeads}";
        var t = s.Text;
        return $"{tower}; text w{t.Width} h{t.Heads} L{t.Layers} ctx{t.ContextLength} vocab{t.VocabSize} {SpecWords.Activation[t.Activation]} pool:{SpecWords.TextPooling[t.Pooling]}" +
               $"{(t.CausalMask ? "" : " non-causal")} proj:{(t.Proj == ProjectionKind.None ? "none" : t.ProjBias ? "linear+bias" : "matrix")}{(t.LayerScale is null ? "" : " ls")} eps {t.NormEps}; " +
               $"embed {s.EmbedDim}{(s.CustomText ? "; custom_text" : "")}{(s.Loss == LossKind.SigLip ? "; siglip" : "")}; batch {BatchSize}; seed {Seed}  [{string.Join(",", Fields)}]";
    }
}

public static class SpecSeedArbitrary
{
    public static Gen<SpecSeed> Generator =>
        Gen.CollectToArray(SpecSeed.Max, m => Gen.Choose(0, m)).Select(SpecSeed.From);

    /// <summary>Each field towards 0: first to 0, then one step down. Shrunk seeds are always valid specs.</summary>
    public static IEnumerable<SpecSeed> Shrink(SpecSeed s)
    {
        var f = s.Fields;
        for (int i = 0; i < f.Length; i++)
        {
            if (f[i] == 0) continue;
            var z = (int[])f.Clone();
            z[i] = 0;
            yield return SpecSeed.From(z);
            if (f[i] > 1)
            {
                var d = (int[])f.Clone();
                d[i] = f[i] - 1;
                yield return SpecSeed.From(d);
            }
        }
    }

    public static Arbitrary<SpecSeed> Seeds() => Arb.From(Generator, Shrink);
}

/// <summary>Random weights and inputs for a spec, and the backend comparison.</summary>
public static class BackendParity
{
    /// <summary>Pixels ~ N(0,1); token rows of random length ≤ context with EOT (the largest id) at a random position, zeros after.</summary>
    public static (Tensor Pixels, Tensor Ids) RandomInputs(ClipSpec spec, int batch, int seed)
    {
        var rng = new Random(seed);
        int r = spec.Vision.ImageSize, c = spec.Text.ContextLength, eot = spec.Text.VocabSize - 1;
        var px = new float[batch * 3 * r * r];
        for (int i = 0; i < px.Length; i++) px[i] = (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
        var lengths = Enumerable.Range(0, batch).Select(_ => rng.Next(1, c + 1)).ToArray();
        int width = lengths.Max();                                    // rows narrower than the context exercise the padding
        var ids = new long[batch * width];
        for (int b = 0; b < batch; b++)
        {
            int pos = rng.Next(0, lengths[b]);
            for (int j = 0; j < lengths[b]; j++) ids[b * width + j] = j == pos ? eot : rng.Next(0, eot);
        }
        return (tensor(px, [batch, 3, r, r]), tensor(ids, [batch, width]));
    }

    /// <summary>Overwrites every weight with seeded random values (BatchNorm variances positive).</summary>
    public static void Randomize(ClipModule model, int seed)
    {
        using var _ = no_grad();
        var gen = new torch.Generator((ulong)seed + 1);
        foreach (var (key, t) in model.state_dict())
        {
            if (!t.is_floating_point()) continue;
            if (key.EndsWith("running_var", StringComparison.Ordinal)) t.copy_(rand(t.shape, generator: gen) + 0.5);
            else if (key == "logit_scale") t.fill_(2.0);
            else if (key.EndsWith(".gamma", StringComparison.Ordinal)) t.copy_(randn(t.shape, generator: gen) * 0.2 + 1.0);
            else t.copy_(randn(t.shape, generator: gen) * 0.2);
        }
    }

    /// <summary>max |ORT − torch| over the four outputs, each against 1e-4·max(1, max|torch|); throws with the numbers.</summary>
    public static void AssertParity(SpecSeed seed, double rel = 1e-4)
    {
        var spec = seed.ToSpec();
        using var model = new RuntimeClipModel(spec);
        Randomize(model, seed.Seed);
        using var scope = NewDisposeScope();
        var (px, ids) = RandomInputs(spec, seed.BatchSize, seed.Seed);
        using var tb = ClipBackends.Create(model, BackendKind.Torch);
        using var ob = ClipBackends.Create(model, BackendKind.Onnx, new ClipBackendOptions { Session = new OnnxClipSessionOptions { IntraOpNumThreads = 1 } });
        var ti = tb.EncodeImage(px);
        var tt = tb.EncodeText(ids);
        var (tl, tlt) = tb.Logits(ti, tt);
        var oi = ob.EncodeImage(px);
        var ot = ob.EncodeText(ids);
        var (ol, olt) = ob.Logits(oi, ot);
        var problems = new List<string>();
        foreach (var (name, t, o) in new[] { ("image_features", ti, oi), ("text_features", tt, ot), ("logits_per_image", tl, ol), ("logits_per_text", tlt, olt) })
        {
            double diff = (t.to(ScalarType.Float64) - o.to(ScalarType.Float64)).abs().max().item<double>();
            double tol = rel * Math.Max(1, t.abs().max().ToDouble());
            if (!(diff <= tol)) problems.Add($"{name}: max|diff| {diff:E3} > {tol:E3}");
        }
        if (problems.Count > 0) throw new Xunit.Sdk.XunitException($"{seed}: {string.Join("; ", problems)}");
    }
}

public class BackendParityProperties
{
    /// <summary>ORT equals TorchSharp within 1e-4 relative on random small specs, weights and inputs.</summary>
    [Property(Arbitrary = [typeof(SpecSeedArbitrary)], MaxTest = 40, QuietOnSuccess = true)]
    public void Onnx_runtime_equals_torchsharp_on_random_specs(SpecSeed seed) => BackendParity.AssertParity(seed);

    /// <summary>The plan's key table is exactly the module's state_dict: names, order, shapes and dtypes.</summary>
    [Property(Arbitrary = [typeof(SpecSeedArbitrary)], MaxTest = 60, QuietOnSuccess = true)]
    public void Key_table_equals_state_dict_on_random_specs(SpecSeed seed)
    {
        var spec = seed.ToSpec();
        using var model = new RuntimeClipModel(spec);
        var plan = ClipPlan.From(spec);
        // Every entry with its shape and dtype (TorchSharp lists buffers after all parameters, so compare as sets) ...
        var state = model.state_dict().Select(kv => (kv.Key, Shape: string.Join(",", kv.Value.shape), DType: kv.Value.dtype == ScalarType.Int64 ? "int64" : "float32"))
            .OrderBy(x => x.Key, StringComparer.Ordinal).ToList();
        var table = plan.KeyTable.Select(k => (k.Key, Shape: string.Join(",", k.Shape), k.DType)).OrderBy(x => x.Key, StringComparer.Ordinal).ToList();
        Assert.True(state.SequenceEqual(table), $"{seed}\nstate_dict: {string.Join(" ", state.Select(x => x.Key))}\nkey table:  {string.Join(" ", table.Select(x => x.Key))}");
        // ... and the parameters in PyTorch's order.
        var parameters = model.named_parameters().Select(p => p.name).ToList();
        Assert.Equal(plan.KeyTable.Where(k => k.Kind == KeyKind.Parameter).Select(k => k.Key), parameters);
        Assert.Equal(plan.ParameterCount, model.parameters().Sum(p => p.numel()));
    }

    /// <summary>
    /// A model's weights written in every layout that can hold the spec (OpenAI's, open_clip's own, Hugging Face's) and read back
    /// give the same tensors, bit for bit; the configs written beside them infer the same architecture.
    /// </summary>
    [Property(Arbitrary = [typeof(SpecSeedArbitrary)], MaxTest = 30, QuietOnSuccess = true)]
    public void Weights_round_trip_through_every_layout(SpecSeed seed) => LayoutRoundTrip.Assert(seed);

    /// <summary>A SigLIP-shaped seed: timm tower without class token, attention pool, no projection; non-causal text pooled last, Linear head; sigmoid loss.</summary>
    static SpecSeed SigLipSeed
    {
        get
        {
            var f = new int[SpecSeed.Max.Length];
            f[20] = 1; f[21] = 2; f[22] = 1; f[23] = 1; f[26] = 1; f[28] = 2; f[29] = 1; f[30] = 1; f[31] = 1; f[33] = 1; f[34] = 1; f[35] = 1;
            return SpecSeed.From(f);
        }
    }

    [Fact]
    public void SigLip_preset_is_held_by_every_layout_and_runs_alike_on_both_backends()
    {
        var spec = SigLipSeed.ToSpec();
        var plan = ClipPlan.From(spec);
        Assert.Equal(HfFamily.Siglip, plan.HuggingFace);
        Assert.True(plan.Supports(WeightLayout.OpenClip, out _));
        BackendParity.AssertParity(SigLipSeed);
    }

    [Fact]
    public void Timm_tower_with_a_class_token_round_trips_through_open_clip()
    {
        // Found by the round-trip property: a timm tower (patch bias, no ln_pre, eps 1e-6) pooled on a class token.
        var f = new int[SpecSeed.Max.Length];
        f[22] = 1; f[23] = 1; f[31] = 1; f[33] = 1;
        LayoutRoundTrip.Assert(SpecSeed.From(f));
    }

    [Fact]
    public void Every_layout_is_exercised_by_the_round_trip()
    {
        // The simplest seed is an OpenAI-style CLIP (Hugging Face's CLIPModel); the SigLIP preset is what SiglipModel holds.
        LayoutRoundTrip.Assert(SpecSeed.From(new int[SpecSeed.Max.Length]));
        LayoutRoundTrip.Assert(SigLipSeed);
        var rng = new Random(11);
        for (int i = 0; i < 24; i++) LayoutRoundTrip.Assert(SpecSeed.From(SpecSeed.Max.Select(m => rng.Next(0, m + 1)).ToArray()));
        foreach (var target in Enum.GetValues<ClipGen.Checkpoints.ConversionTarget>())
            Assert.True(LayoutRoundTrip.Exercised.TryGetValue(target, out var n) && n > 0, $"no random spec was written as {target}");
    }

    [Fact]
    public void Shrinking_reaches_the_minimal_failing_spec()
    {
        // A synthetic bug: "fails for any ResNet with more than one pool head". FsCheck's greedy shrink (take the first
        // smaller candidate that still fails) must end at the simplest such spec: every other field at 0.
        static bool Fails(SpecSeed s) => s.ResNet == 1 && s.PoolHeadsLog >= 1;
        var start = SpecSeed.From(SpecSeed.Max);
        Assert.True(Fails(start));
        var current = start;
        for (bool progress = true; progress;)
        {
            progress = false;
            foreach (var c in SpecSeedArbitrary.Shrink(current))
                if (Fails(c)) { current = c; progress = true; break; }
        }
        var expected = new int[SpecSeed.Max.Length];
        expected[0] = 1;   // ResNet
        expected[10] = 1;  // PoolHeadsLog: 2 heads
        Assert.Equal(expected, current.Fields);
        Assert.Contains("RN 32px w2 [1,1,1,1] pool heads 2", current.ToString());
    }

    [Fact]
    public void Every_seed_within_bounds_is_a_valid_spec()
    {
        var rng = new Random(5);
        for (int i = 0; i < 200; i++)
        {
            var s = SpecSeed.From(SpecSeed.Max.Select(m => rng.Next(0, m + 1)).ToArray()).ToSpec();
            Assert.Equal(ClipPlan.From(s).Vision.ImageSize, s.Vision.ImageSize);
            Assert.Equal(KeyTable.Build(s).Count, KeyTable.Build(s).Select(k => k.Key).Distinct().Count());
            // Valid: its YAML reads back as the same spec, with no diagnostic.
            Assert.Equal(s, SpecResolver.ResolveSingle("prop.yaml", SpecYamlWriter.Write(s)));
        }
    }
}

/// <summary>Writes a random model in every layout that can hold it and reads it back.</summary>
public static class LayoutRoundTrip
{
    /// <summary>How many conversions each target has done in this test run (so a test can prove every layout was exercised).</summary>
    public static readonly System.Collections.Concurrent.ConcurrentDictionary<ClipGen.Checkpoints.ConversionTarget, int> Exercised = new();

    public static void Assert(SpecSeed seed)
    {
        var spec = seed.ToSpec();
        var plan = ClipPlan.From(spec);
        using var model = new RuntimeClipModel(spec);
        BackendParity.Randomize(model, seed.Seed);
        var dir = TestUtil.TempDir();
        var source = Path.Combine(dir, "model.safetensors");
        var state = model.state_dict();
        ClipGen.IO.TensorFiles.SaveSafetensors(source, state);
        foreach (var target in Enum.GetValues<ClipGen.Checkpoints.ConversionTarget>())
        {
            var output = Path.Combine(dir, target.ToString());
            try { ClipGen.Checkpoints.CheckpointConverter.Convert(spec, source, target, output); }
            catch (ClipGenException e) when (target != ClipGen.Checkpoints.ConversionTarget.OpenAI)
            {
                // A layout that cannot hold the spec must say so before writing anything.
                Xunit.Assert.False(Directory.Exists(output) && Directory.EnumerateFiles(output).Any(), $"{seed}: {target} refused ({e.Message}) after writing files");
                continue;
            }
            Exercised.AddOrUpdate(target, 1, (_, n) => n + 1);
            using var back = ClipModelFactory.Load(spec, output);
            var backState = back.state_dict();
            foreach (var (key, t) in state)
                Xunit.Assert.True(t.contiguous().bytes.SequenceEqual(backState[key].contiguous().bytes), $"{seed}: {target} round trip changed '{key}'");
            if (target == ClipGen.Checkpoints.ConversionTarget.OpenAI) continue;
            // The config written beside the weights describes the same architecture.
            var inferred = ClipGen.Checkpoints.SpecInference.Infer(output, "prop").Spec;
            var (a, b) = (Normalize(spec, target), Normalize(inferred, target));
            Xunit.Assert.True(a.Vision == b.Vision, $"{seed}: {target} config gives another image tower:\n{a.Vision}\n{b.Vision}");
            Xunit.Assert.True(a.Text == b.Text, $"{seed}: {target} config gives another text tower:\n{a.Text}\n{b.Text}");
            Xunit.Assert.True(a.Keys == b.Keys, $"{seed}: {target} config gives other keys");
            Xunit.Assert.True(a == b, $"{seed}: {target} config gives another model:\n{a with { Keys = default }}\n{b with { Keys = default }}");
        }
    }

    /// <summary>
    /// The plan of a spec without what a layout's config need not carry: names, initial values, end and pad ids, and for Hugging Face
    /// open_clip's storage choices (timm names, CustomTextCLIP).
    /// </summary>
    static ClipPlan Normalize(ClipSpec s, ClipGen.Checkpoints.ConversionTarget target)
    {
        bool hf = target == ClipGen.Checkpoints.ConversionTarget.HuggingFace;
        return ClipPlan.From(s with
        {
            Name = "", InitLogitScale = 0, InitLogitBias = 0,
            CustomText = !hf && s.CustomText,
            Vision = s.Vision with { TimmModelName = hf ? "" : s.Vision.TimmModelName },
            Text = s.Text with { EosId = 0, PadId = 0 },
        });
    }
}
