using Microsoft.Extensions.Logging;
using System.Text.Json;
using System.Text.Json.Nodes;
using ClipGen.IO;
using ClipGen.Specs;
using static TorchSharp.torch;

namespace ClipGen.Checkpoints;

/// <summary>The ecosystem a checkpoint is converted to.</summary>
public enum ConversionTarget
{
    /// <summary><c>model.safetensors</c> with OpenAI's keys, and the spec's YAML beside it.</summary>
    OpenAI,
    /// <summary>An open_clip hub folder: <c>open_clip_config.json</c> + <c>open_clip_model.safetensors</c>.</summary>
    OpenClip,
    /// <summary>A Hugging Face folder: <c>config.json</c> (CLIPModel) + <c>model.safetensors</c> (+ <c>preprocessor_config.json</c>).</summary>
    HuggingFace,
}

/// <summary>
/// Converts a checkpoint between OpenAI, open_clip and Hugging Face layouts. Driven by the spec's key table
/// (<see cref="KeyMapping"/>): the input is bound strictly, each key is read in the stored dtype, mapped, and streamed into a
/// safetensors file; tensors are never changed, so a round trip is bit-exact.
/// </summary>
public static class CheckpointConverter
{
    /// <summary>Parses <c>openai</c>, <c>open_clip</c> or <c>hf</c>.</summary>
    public static ConversionTarget ParseTarget(string text) => text.ToLowerInvariant() switch
    {
        "openai" => ConversionTarget.OpenAI,
        "open_clip" or "openclip" or "open-clip" => ConversionTarget.OpenClip,
        "hf" or "huggingface" or "hugging_face" => ConversionTarget.HuggingFace,
        _ => throw new ClipGenException($"unknown conversion target '{text}' (expected openai, open_clip or hf)"),
    };

    /// <summary>The weight layout a target writes.</summary>
    public static WeightLayout Layout(ConversionTarget target) => target switch
    {
        ConversionTarget.OpenClip => WeightLayout.OpenClip,
        ConversionTarget.HuggingFace => WeightLayout.HuggingFace,
        _ => WeightLayout.OpenAI,
    };

    /// <summary>
    /// Converts <paramref name="weightsPath"/> (any supported file or folder) of <paramref name="spec"/> to <paramref name="target"/>
    /// under <paramref name="output"/>, a folder (for OpenAI also a <c>.safetensors</c> file path). Returns the files written.
    /// </summary>
    /// <exception cref="ClipGenException">The input does not fit the spec, its activation differs, or the target cannot hold the spec (ResNet to hf).</exception>
    public static IReadOnlyList<string> Convert(ClipSpec spec, string weightsPath, ConversionTarget target, string output, ILogger? logger = null)
    {
        var plan = ClipPlan.From(spec);
        var layout = Layout(target);
        // Check what the target can hold before reading anything.
        var mapping = KeyMapping.For(plan, layout).ToDictionary(m => m.Target.Key, StringComparer.Ordinal);
        if (target == ConversionTarget.OpenClip) OpenClipConfig(spec);
        if (target == ConversionTarget.HuggingFace) HfConfig(spec);
        using var checkpoint = ClipCheckpoint.Open(weightsPath);
        var bound = CheckpointLoader.Bind(checkpoint, spec, plan);
        CheckpointLoader.CheckActivation(spec, checkpoint, logger);

        var items = new List<SafeTensorsTorchWriter.Item>();
        foreach (var key in bound)
        {
            var map = mapping[key.Target.Key];
            long row = 0;
            for (int i = 0; i < map.Sources.Count; i++)
            {
                var k = key;
                var shape = map.SourceShapes[i];
                var start = row;
                row += map.Transform == KeyTransform.Concat ? shape[0] : 0;
                items.Add(new SafeTensorsTorchWriter.Item(map.Sources[i], key.DType, shape, () => Produce(k, map.Transform, shape, start)));
            }
        }

        var written = new List<string>();
        switch (target)
        {
            case ConversionTarget.OpenAI:
            {
                string file = output.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) ? output : Path.Combine(output, "model.safetensors");
                var meta = new Dictionary<string, string> { ["format"] = "pt", ["activation"] = SpecWords.Activation[spec.Activation], ["spec"] = spec.Name };
                if (spec.Vision.Activation != spec.Activation) meta["activation.vision"] = SpecWords.Activation[spec.Vision.Activation];
                if (spec.Text.Activation != spec.Activation) meta["activation.text"] = SpecWords.Activation[spec.Text.Activation];
                SafeTensorsTorchWriter.Write(file, items, meta);
                written.Add(file);
                var yaml = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(file))!, spec.Name + ".yaml");
                WriteText(yaml, SpecYamlWriter.Write(spec));
                written.Add(yaml);
                break;
            }
            case ConversionTarget.OpenClip:
            {
                var file = Path.Combine(output, "open_clip_model.safetensors");
                SafeTensorsTorchWriter.Write(file, items, new Dictionary<string, string> { ["format"] = "pt" });
                written.Add(file);
                written.AddRange(WriteConfigs(spec, target, output));
                break;
            }
            case ConversionTarget.HuggingFace:
            {
                var file = Path.Combine(output, "model.safetensors");
                SafeTensorsTorchWriter.Write(file, items, new Dictionary<string, string> { ["format"] = "pt" });
                written.Add(file);
                written.AddRange(WriteConfigs(spec, target, output, key => bound.First(b => b.Target.Key == key).DType));
                break;
            }
        }
        return written;
    }

    /// <summary>One stored tensor of a key in the target layout: the key itself, transposed, reshaped, or one part of a split.</summary>
    static Tensor Produce(BoundKey key, KeyTransform transform, long[] shape, long row)
    {
        using var own = key.Read();
        return transform switch
        {
            KeyTransform.Same => own.alias(),
            KeyTransform.Transpose => own.t().contiguous(),
            KeyTransform.Reshape => own.reshape(shape).contiguous(),
            KeyTransform.Concat => own.narrow(0, row, shape[0]).clone(),
            _ => throw new InvalidOperationException(transform.ToString()),
        };
    }

    /// <summary>
    /// Writes the config files that make <paramref name="folder"/> an open_clip folder (<c>open_clip_config.json</c>) or a
    /// Hugging Face folder (<c>config.json</c> + <c>preprocessor_config.json</c>) of <paramref name="spec"/>, each under a temporary
    /// name and renamed; nothing for <see cref="ConversionTarget.OpenAI"/>. <paramref name="dtypeOf"/> gives the stored dtype of an
    /// OpenAI key (Hugging Face's <c>torch_dtype</c>; float32 when not given). Returns the files written.
    /// </summary>
    public static IReadOnlyList<string> WriteConfigs(ClipSpec spec, ConversionTarget target, string folder, Func<string, TensorDType>? dtypeOf = null)
    {
        var indented = new JsonSerializerOptions { WriteIndented = true };
        var written = new List<string>();
        switch (target)
        {
            case ConversionTarget.OpenClip:
            {
                var config = Path.Combine(folder, ClipCheckpoint.OpenClipConfigFile);
                WriteText(config, OpenClipConfig(spec).ToJsonString(indented));
                written.Add(config);
                break;
            }
            case ConversionTarget.HuggingFace:
            {
                var config = Path.Combine(folder, ClipCheckpoint.HfConfigFile);
                WriteText(config, HfConfig(spec, dtypeOf).ToJsonString(indented));
                written.Add(config);
                var pre = Path.Combine(folder, "preprocessor_config.json");
                WriteText(pre, HfPreprocessorConfig(spec).ToJsonString(indented));
                written.Add(pre);
                break;
            }
        }
        return written;
    }

    static void WriteText(string path, string text)
    {
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var tmp = full + ".tmp-" + Environment.ProcessId;
        File.WriteAllText(tmp, text.EndsWith('\n') ? text : text + "\n");
        File.Move(tmp, full, overwrite: true);
    }

    /// <summary>
    /// open_clip's <c>open_clip_config.json</c> for a spec: <c>model_cfg</c> (open_clip's own towers, or a timm tower named with its
    /// <c>timm_model_kwargs</c>; <c>quick_gelu</c>, <c>act_kwargs</c>, <c>norm_kwargs</c> for what the weights do not record) and
    /// <c>preprocess_cfg</c>.
    /// </summary>
    /// <exception cref="ClipGenException">open_clip's config cannot express the spec.</exception>
    public static JsonObject OpenClipConfig(ClipSpec spec)
    {
        var plan = ClipPlan.From(spec);
        if (!plan.Supports(WeightLayout.OpenClip, out var why)) throw new ClipGenException(why);
        var v = spec.Vision;
        var t = spec.Text;
        bool visionQuick = v.Kind == VisionKind.VisionTransformer && v.TimmModelName.Length == 0 && v.Activation == ActivationKind.QuickGelu;
        bool textQuick = t.Activation == ActivationKind.QuickGelu;
        if (visionQuick != textQuick && v.Kind == VisionKind.VisionTransformer && v.TimmModelName.Length == 0)
            throw new ClipGenException($"open_clip's quick_gelu applies to both of its towers, so it cannot hold spec '{spec.Name}' with {SpecWords.Display(v.Activation)} (image) and {SpecWords.Display(t.Activation)} (text)");
        bool quick = textQuick;

        JsonObject? Kwargs(ActivationKind act, double eps, JsonObject cfg)
        {
            if (act == ActivationKind.QuickGelu && !quick) throw new ClipGenException($"open_clip cannot hold spec '{spec.Name}': QuickGELU in one tower needs quick_gelu for both");
            if (act == ActivationKind.GeluTanh) cfg["act_kwargs"] = new JsonObject { ["approximate"] = "tanh" };
            if (eps != SpecDefaults.NormEps) cfg["norm_kwargs"] = new JsonObject { ["eps"] = eps };
            return cfg;
        }

        JsonObject vision;
        if (v.Kind == VisionKind.ModifiedResNet)
            vision = new JsonObject { ["image_size"] = v.ImageSize, ["layers"] = new JsonArray(v.Layers.Select(l => (JsonNode)l).ToArray()), ["width"] = v.Width, ["head_width"] = v.HeadWidth };
        else if (v.TimmModelName.Length > 0)
        {
            var kwargs = new JsonObject
            {
                ["embed_dim"] = v.Width, ["depth"] = v.Layers[0], ["num_heads"] = v.Width / v.HeadWidth, ["patch_size"] = v.PatchSize,
                ["img_size"] = v.ImageSize, ["mlp_ratio"] = v.MlpRatio, ["class_token"] = v.ClassToken, ["pre_norm"] = v.LnPre,
                ["fc_norm"] = v.FinalLnAfterPool, ["act_layer"] = v.Activation == ActivationKind.GeluTanh ? "gelu_tanh" : v.Activation == ActivationKind.Gelu ? "gelu" : "quick_gelu",
            };
            if (v.LayerScale is double ls) kwargs["init_values"] = ls;
            if (v.NormEps != TimmVit.NormEps) throw new ClipGenException($"open_clip cannot hold spec '{spec.Name}': a timm tower's LayerNorm eps is {TimmVit.NormEps}, not {v.NormEps}");
            vision = new JsonObject
            {
                ["image_size"] = v.ImageSize, ["timm_model_name"] = v.TimmModelName, ["timm_model_pretrained"] = false,
                ["timm_pool"] = v.Pool switch { VisionPooling.Attention => "map", VisionPooling.Mean => "avg", _ => "token" },
                ["timm_proj"] = v.Proj == ProjectionKind.None ? "none" : "linear", ["timm_model_kwargs"] = kwargs,
            };
        }
        else
        {
            vision = new JsonObject
            {
                ["image_size"] = v.ImageSize, ["layers"] = v.Layers[0], ["width"] = v.Width, ["head_width"] = v.HeadWidth,
                ["mlp_ratio"] = v.MlpRatio, ["patch_size"] = v.PatchSize,
            };
            if (v.LayerScale is double ls) vision["ls_init_value"] = ls;
            if (!v.LnPre) vision["no_ln_pre"] = true;
            if (v.Pool == VisionPooling.Mean) vision["pool_type"] = "avg";
            if (v.FinalLnAfterPool) vision["final_ln_after_pool"] = true;
            if (v.Proj == ProjectionKind.None) throw new ClipGenException($"open_clip's own VisionTransformer always projects, so it cannot hold spec '{spec.Name}' (proj: none); set vision.timm_model_name");
            Kwargs(v.Activation, v.NormEps, vision);
        }
        var text = new JsonObject
        {
            ["context_length"] = t.ContextLength, ["vocab_size"] = t.VocabSize, ["width"] = t.Width,
            ["heads"] = t.Heads, ["layers"] = t.Layers, ["mlp_ratio"] = t.MlpRatio,
        };
        switch (t.Pooling)
        {
            case TextPooling.Argmax: break;
            case TextPooling.Eos: text["pool_type"] = "eos"; text["eos_id"] = t.EosId; break;
            case TextPooling.Mean: throw new ClipGenException($"open_clip's TextTransformer has no 'mean' pooling, so it cannot hold spec '{spec.Name}'");
            default: text["pool_type"] = SpecWords.TextPooling[t.Pooling]; break;
        }
        if (!t.CausalMask) text["no_causal_mask"] = true;
        if (t.Proj == ProjectionKind.None) text["proj_type"] = "none";
        if (t.ProjBias) text["proj_bias"] = true;
        if (t.LayerScale is double tls) text["ls_init_value"] = tls;
        if (t.PadId != SpecDefaults.PadId) text["pad_id"] = t.PadId;
        if (spec.Tokenizer.Clean.Length > 0) text["tokenizer_kwargs"] = new JsonObject { ["clean"] = spec.Tokenizer.Clean };
        if (spec.Tokenizer.StripSepToken) ((JsonObject)(text["tokenizer_kwargs"] ??= new JsonObject()))["strip_sep_token"] = true;
        Kwargs(t.Activation, t.NormEps, text);
        var model = new JsonObject { ["embed_dim"] = spec.EmbedDim };
        if (quick) model["quick_gelu"] = true;
        if (spec.InitLogitScale != SpecDefaults.ClipInitLogitScale) model["init_logit_scale"] = spec.InitLogitScale;
        if (spec.Loss == LossKind.SigLip) model["init_logit_bias"] = spec.InitLogitBias;
        if (spec.CustomText) model["custom_text"] = true;
        model["vision_cfg"] = vision;
        model["text_cfg"] = text;
        var p = spec.Preprocess;
        return new JsonObject
        {
            ["model_cfg"] = model,
            ["preprocess_cfg"] = new JsonObject
            {
                ["mean"] = new JsonArray(p.Mean.Select(x => (JsonNode)x).ToArray()),
                ["std"] = new JsonArray(p.Std.Select(x => (JsonNode)x).ToArray()),
                ["interpolation"] = SpecWords.Interpolation[p.Interpolation],
                ["resize_mode"] = SpecWords.ResizeMode[p.ResizeMode],
                ["fill_color"] = p.FillColor,
            },
        };
    }

    /// <summary>transformers' <c>hidden_act</c> name of an activation.</summary>
    static string HfAct(ActivationKind a) => a switch
    {
        ActivationKind.QuickGelu => "quick_gelu",
        ActivationKind.Gelu => "gelu",
        _ => "gelu_pytorch_tanh",
    };

    /// <summary>Hugging Face's <c>config.json</c> of a spec: a <c>CLIPModel</c> or a <c>SiglipModel</c> (<see cref="ClipPlan.HuggingFace"/>).</summary>
    /// <exception cref="ClipGenException">Neither class can hold the spec.</exception>
    public static JsonObject HfConfig(ClipSpec spec, Func<string, TensorDType>? dtypeOf = null)
    {
        var plan = ClipPlan.From(spec);
        if (!plan.Supports(WeightLayout.HuggingFace, out var why)) throw new ClipGenException(why);
        var dtype = (dtypeOf?.Invoke("visual.conv1.weight") ?? TensorDType.F32) switch
        {
            TensorDType.F16 => "float16",
            TensorDType.BF16 => "bfloat16",
            TensorDType.F64 => "float64",
            _ => "float32",
        };
        var t = plan.Text;
        var v = (VitPlan)plan.Vision;
        bool siglip = plan.HuggingFace == HfFamily.Siglip;
        var text = new JsonObject
        {
            ["model_type"] = siglip ? "siglip_text_model" : "clip_text_model",
            ["hidden_size"] = t.Width,
            ["intermediate_size"] = t.Transformer.Block.Mlp.Hidden,
            ["num_attention_heads"] = t.Heads,
            ["num_hidden_layers"] = t.Transformer.Layers,
            ["max_position_embeddings"] = t.ContextLength,
            ["vocab_size"] = t.VocabSize,
            ["hidden_act"] = HfAct(spec.Text.Activation),
            ["layer_norm_eps"] = t.LnFinal.Eps,
            // transformers' CLIP pools at the first eos_token_id, except for the legacy id 2, which means argmax: so argmax pooling is
            // written as 2, eos pooling as its id. SigLIP pools the last token whatever the id says.
            ["eos_token_id"] = !siglip && t.Pooling == TextPooling.Argmax ? 2 : t.EosId,
            ["pad_token_id"] = siglip ? spec.Text.PadId : 1,
        };
        if (siglip) text["projection_size"] = plan.EmbedDim;
        else { text["projection_dim"] = plan.EmbedDim; text["bos_token_id"] = 49406; }
        var vision = new JsonObject
        {
            ["model_type"] = siglip ? "siglip_vision_model" : "clip_vision_model",
            ["hidden_size"] = v.Width,
            ["intermediate_size"] = v.Transformer.Block.Mlp.Hidden,
            ["num_attention_heads"] = v.Heads,
            ["num_hidden_layers"] = v.Transformer.Layers,
            ["image_size"] = v.ImageSize,
            ["patch_size"] = v.PatchSize,
            ["num_channels"] = 3,
            ["hidden_act"] = HfAct(spec.Vision.Activation),
            ["layer_norm_eps"] = v.LnPost.Eps,
        };
        if (!siglip) vision["projection_dim"] = plan.EmbedDim;
        var config = new JsonObject
        {
            ["architectures"] = new JsonArray(siglip ? "SiglipModel" : "CLIPModel"),
            ["model_type"] = siglip ? "siglip" : "clip",
            ["torch_dtype"] = dtype,
        };
        if (!siglip)
        {
            config["projection_dim"] = plan.EmbedDim;
            config["logit_scale_init_value"] = spec.InitLogitScale;
            config["initializer_factor"] = 1.0;
        }
        config["text_config"] = text;
        config["vision_config"] = vision;
        return config;
    }

    /// <summary>Hugging Face's <c>preprocessor_config.json</c> (CLIPImageProcessor, or SiglipImageProcessor's squash resize) for a spec.</summary>
    public static JsonObject HfPreprocessorConfig(ClipSpec spec)
    {
        var p = spec.Preprocess;
        bool squash = p.ResizeMode == ResizeModeKind.Squash;
        var config = new JsonObject
        {
            ["image_processor_type"] = squash ? "SiglipImageProcessor" : "CLIPImageProcessor",
            ["do_resize"] = true,
            ["size"] = squash ? new JsonObject { ["height"] = p.ImageSize, ["width"] = p.ImageSize } : new JsonObject { ["shortest_edge"] = p.ImageSize },
            ["resample"] = p.Interpolation == InterpolationKind.Bilinear ? 2 : 3,
        };
        if (!squash)
        {
            config["do_center_crop"] = true;
            config["crop_size"] = new JsonObject { ["height"] = p.ImageSize, ["width"] = p.ImageSize };
        }
        config["do_rescale"] = true;
        config["rescale_factor"] = 1.0 / 255;
        config["do_normalize"] = true;
        config["image_mean"] = new JsonArray(p.Mean.Select(x => (JsonNode)x).ToArray());
        config["image_std"] = new JsonArray(p.Std.Select(x => (JsonNode)x).ToArray());
        config["do_convert_rgb"] = true;
        return config;
    }
}
