using ClipGen.Checkpoints;
using ClipGen.IO;
using ClipGen.Modeling;
using ClipGen.Specs;
using Xunit;
using static TorchSharp.torch;

namespace ClipGen.Tests.Checkpoints;

/// <summary>Issue 3's acceptance: every format of every reference model reproduces the reference outputs through <c>clipgen infer</c>.</summary>
public class LoaderParityTests
{
    internal static string Ref(params string[] parts) => Fixtures.Path_(["reference", .. parts]);

    /// <summary>Runs <c>clipgen infer</c> and compares every output with the folder's reference; returns stderr.</summary>
    internal static string InferAndCompare(string? model, string weights, string folder, double rel = 1e-4, params string[] extra)
    {
        using var temp = new TempFolder();
        var output = temp.File("out.safetensors");
        string[] args = ["infer", .. model is null ? Array.Empty<string>() : ["--model", model], "--weights", weights,
            "--inputs", Ref(folder, "inputs.safetensors"), "--output", output, .. extra];
        var (code, _, err) = TestUtil.Cli(args);
        Assert.True(code == 0, err);
        using var expected = TestUtil.Read(Ref(folder, "outputs.safetensors"));
        using var actual = TestUtil.Read(output);
        Assert.Equal(expected.Tensors.Keys.Order(), actual.Tensors.Keys.Order());
        foreach (var key in expected.Tensors.Keys)
            TestUtil.AssertClose(expected.Tensors[key], actual.Tensors[key].to(ScalarType.Float32), $"{weights}: {key}", rel);
        return err;
    }

    [Theory]
    [InlineData("tiny-vit", "model.safetensors")]
    [InlineData("tiny-vit", "openai_state_dict.pt")]
    [InlineData("tiny-vit", "openai_jit.pt")]
    [InlineData("tiny-rn", "model.safetensors")]
    [InlineData("tiny-rn", "openai_state_dict.pt")]
    [InlineData("tiny-rn", "openai_jit.pt")]
    public void OpenAI_models_in_every_format(string model, string file)
    {
        var err = InferAndCompare(model, Ref("openai", model, file), "openai/" + model);
        // The TorchScript archive says it is OpenAI's (QuickGELU); the other two do not record the activation.
        if (file == "openai_jit.pt") Assert.DoesNotContain("do not record their activation", err);
        else Assert.Contains("do not record their activation; assuming QuickGELU", err);
    }

    [Theory]
    [InlineData("open_clip_model.safetensors")]
    [InlineData("open_clip_pytorch_model.bin")]
    [InlineData("")]
    public void Open_clip_gelu_as_safetensors_bin_and_hub_folder(string file)
    {
        var weights = file.Length == 0 ? Ref("open_clip", "tiny-vit-gelu") : Ref("open_clip", "tiny-vit-gelu", file);
        var err = InferAndCompare("tiny-vit-gelu", weights, "open_clip/tiny-vit-gelu");
        Assert.DoesNotContain("assuming", err); // open_clip_config.json says quick_gelu: false
    }

    [Fact]
    public void Open_clip_folder_without_a_model_infers_its_spec_from_the_config()
    {
        var err = InferAndCompare(null, Ref("open_clip", "tiny-vit-gelu"), "open_clip/tiny-vit-gelu");
        Assert.Contains("inferred spec 'tiny-vit-gelu'", err);
        using var checkpoint = ClipCheckpoint.Open(Ref("open_clip", "tiny-vit-gelu"));
        var inferred = SpecInference.Infer(checkpoint).Spec;
        var expected = ModelRegistry.Get("tiny-vit-gelu").Spec;
        // init_logit_scale is not in the weights: the spec default ln(1/0.07) is inferred.
        Assert.Equal(expected with { ClassName = inferred.ClassName, Aliases = inferred.Aliases, InitLogitScale = inferred.InitLogitScale }, inferred);
    }

    [Fact]
    public void Hugging_Face_folder_infers_its_spec_and_reproduces_the_reference()
    {
        var err = InferAndCompare(null, Ref("hf", "tiny-vit"), "hf/tiny-vit");
        Assert.Contains("inferred spec 'tiny-vit'", err);
        var spec = SpecInference.Infer(Ref("hf", "tiny-vit")).Spec;
        Assert.Equal(2, ClipPlan.From(spec).VisionHeads); // from config.json, not OpenAI's width/64 rule
        Assert.Equal(32, spec.Vision.HeadWidth);
        Assert.Equal(2, spec.Text.Heads);
        Assert.Equal(ActivationKind.QuickGelu, spec.Activation);
        Assert.Equal(TextPooling.Eos, spec.Text.Pooling);
        Assert.Equal(49407, spec.Text.EosId);
        Assert.Equal(2.6592, spec.InitLogitScale);
    }

    [Fact]
    public void Hugging_Face_sharded_folder_with_position_ids_loads()
    {
        using var temp = new TempFolder();
        File.Copy(Ref("hf", "tiny-vit", "config.json"), temp.File("config.json"));
        using (var all = TestUtil.Read(Ref("hf", "tiny-vit", "model.safetensors")))
        {
            var keys = all.Tensors.Keys.Order(StringComparer.Ordinal).ToList();
            var first = keys.Where(k => k.StartsWith("text_model.", StringComparison.Ordinal)).ToDictionary(k => k, k => all.Tensors[k]);
            var second = keys.Where(k => !first.ContainsKey(k)).ToDictionary(k => k, k => all.Tensors[k]);
            // transformers < 4.31 saved these buffers; they must be ignored.
            using var ids = arange(77, ScalarType.Int64).unsqueeze(0);
            first["text_model.embeddings.position_ids"] = ids;
            TensorFiles.SaveSafetensors(temp.File("model-00001-of-00002.safetensors"), first);
            TensorFiles.SaveSafetensors(temp.File("model-00002-of-00002.safetensors"), second);
            var map = first.Keys.Select(k => $"\"{k}\": \"model-00001-of-00002.safetensors\"")
                .Concat(second.Keys.Select(k => $"\"{k}\": \"model-00002-of-00002.safetensors\""));
            File.WriteAllText(temp.File("model.safetensors.index.json"), "{\"metadata\": {\"total_size\": 1}, \"weight_map\": {" + string.Join(", ", map) + "}}");
        }
        InferAndCompare(null, temp.Path, "hf/tiny-vit");
    }

    [Fact]
    public void Activation_recorded_in_the_file_must_match_the_spec()
    {
        using var temp = new TempFolder();
        // OpenAI's TorchScript release is QuickGELU: a GELU spec of the same shapes is refused, naming both.
        var spec = temp.File("tiny-vit-as-gelu.yaml");
        File.WriteAllText(spec, File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "specs", "tiny-vit.yaml"))
            .Replace("name: tiny-vit", "name: tiny-vit-as-gelu").Replace("class_name: TinyVit", "class_name: TinyVitAsGelu").Replace("activation: quick_gelu", "activation: gelu"));
        var (code, _, err) = TestUtil.Cli("infer", "--model", spec, "--weights", Ref("openai", "tiny-vit", "openai_jit.pt"),
            "--inputs", Ref("openai", "tiny-vit", "inputs.safetensors"), "--output", temp.File("o.safetensors"));
        Assert.Equal(2, code);
        Assert.Single(err.TrimEnd().Split('\n'));
        Assert.Contains("were trained with QuickGELU (OpenAI's release) but spec 'tiny-vit-as-gelu' uses GELU", err);
        Assert.Contains("use 'tiny-vit'", err);

        // open_clip's config says quick_gelu: false; the QuickGELU twin of the spec is refused.
        var gelu = ModelRegistry.Get("tiny-vit-gelu").Spec;
        var quick = gelu with
        {
            Name = "tiny-vit-quick",
            Vision = gelu.Vision with { Activation = ActivationKind.QuickGelu },
            Text = gelu.Text with { Activation = ActivationKind.QuickGelu },
        };
        var ex = Assert.Throws<ClipGenException>(() => ClipModelFactory.Load(quick, Ref("open_clip", "tiny-vit-gelu")));
        Assert.Contains("were trained with GELU (open_clip_config.json says quick_gelu: false) but spec 'tiny-vit-quick' uses QuickGELU: use 'tiny-vit-gelu'", ex.Message);
    }

    [Fact]
    public void Keep_dtype_keeps_fp16_and_the_default_converts_to_float32()
    {
        using var temp = new TempFolder();
        var half = temp.File("half.safetensors");
        WriteConverted(Ref("openai", "tiny-vit", "model.safetensors"), half, ScalarType.Float16);

        using (var model = ClipModelFactory.Load("tiny-vit", half, LoadOptions.Default))
            Assert.All(model.parameters(), p => Assert.Equal(ScalarType.Float32, p.dtype));
        using (var model = ClipModelFactory.Load("tiny-vit", half, new LoadOptions { KeepDType = true }))
        using (var source = CheckpointReader.Open(half))
        {
            var state = model.state_dict();
            foreach (var entry in source.Entries)
            {
                Assert.Equal(ScalarType.Float16, state[entry.Name].dtype);
                using var stored = entry.ToTensor();
                Assert.True(stored.bytes.SequenceEqual(state[entry.Name].contiguous().bytes), entry.Name);
            }
        }
    }

    /// <summary>Writes a checkpoint's tensors converted to <paramref name="type"/> (integer tensors kept).</summary>
    internal static void WriteConverted(string from, string to, ScalarType type)
    {
        using var all = TestUtil.Read(from);
        var converted = all.Tensors.ToDictionary(kv => kv.Key, kv => kv.Value.is_floating_point() ? kv.Value.to(type) : kv.Value.alias());
        try { TensorFiles.SaveSafetensors(to, converted); }
        finally { foreach (var t in converted.Values) t.Dispose(); }
    }
}
