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

    /// <summary>
    /// Converts <paramref name="weightsPath"/> (any supported file or folder) of <paramref name="spec"/> to <paramref name="target"/>
    /// under <paramref name="output"/>, a folder (for OpenAI also a <c>.safetensors</c> file path). Returns the files written.
    /// </summary>
    /// <exception cref="ClipGenException">The input does not fit the spec, its activation differs, or the target cannot hold the spec (ResNet to hf).</exception>
    public static IReadOnlyList<string> Convert(ClipSpec spec, string weightsPath, ConversionTarget target, string output, Action<string>? notes = null)
    {
        using var checkpoint = ClipCheckpoint.Open(weightsPath);
        var bound = CheckpointLoader.Bind(checkpoint, spec);
        CheckpointLoader.CheckActivation(spec, checkpoint, notes);
        var naming = target == ConversionTarget.HuggingFace ? CheckpointNaming.HuggingFace : CheckpointNaming.OpenAI;
        var mapping = KeyMapping.For(spec, naming).ToDictionary(m => m.Target.Key, StringComparer.Ordinal);

        var items = new List<SafeTensorsWriter.Item>();
        foreach (var key in bound)
        {
            var map = mapping[key.Target.Key];
            for (int i = 0; i < map.Sources.Count; i++)
            {
                int part = i;
                var k = key;
                items.Add(new SafeTensorsWriter.Item(map.Sources[i], key.DType, map.SourceShapes[i], () => Produce(k, map.Transform, part)));
            }
        }

        var written = new List<string>();
        var activation = spec.Activation == ActivationKind.Gelu ? "gelu" : "quick_gelu";
        switch (target)
        {
            case ConversionTarget.OpenAI:
            {
                string file = output.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) ? output : Path.Combine(output, "model.safetensors");
                var meta = new Dictionary<string, string> { ["format"] = "pt", ["activation"] = activation, ["spec"] = spec.Name };
                SafeTensorsWriter.Write(file, items, meta);
                written.Add(file);
                var yaml = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(file))!, spec.Name + ".yaml");
                WriteText(yaml, SpecYamlWriter.Write(spec));
                written.Add(yaml);
                break;
            }
            case ConversionTarget.OpenClip:
            {
                var file = Path.Combine(output, "open_clip_model.safetensors");
                SafeTensorsWriter.Write(file, items, new Dictionary<string, string> { ["format"] = "pt" });
                written.Add(file);
                written.AddRange(WriteConfigs(spec, target, output));
                break;
            }
            case ConversionTarget.HuggingFace:
            {
                var file = Path.Combine(output, "model.safetensors");
                SafeTensorsWriter.Write(file, items, new Dictionary<string, string> { ["format"] = "pt" });
                written.Add(file);
                written.AddRange(WriteConfigs(spec, target, output, key => bound.First(b => b.Target.Key == key).DType));
                break;
            }
        }
        return written;
    }

    static Tensor Produce(BoundKey key, KeyTransform transform, int part)
    {
        using var openai = key.Read();
        return transform switch
        {
            KeyTransform.Same => openai.alias(),
            KeyTransform.Transpose => openai.t().contiguous(),
            KeyTransform.SplitQkv => openai.narrow(0, part * (openai.shape[0] / 3), openai.shape[0] / 3).clone(),
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

    /// <summary>open_clip's <c>open_clip_config.json</c> for a spec: <c>model_cfg</c> (with <c>quick_gelu</c>) and <c>preprocess_cfg</c>.</summary>
    public static JsonObject OpenClipConfig(ClipSpec spec)
    {
        var v = spec.Vision;
        var vision = new JsonObject { ["image_size"] = v.ImageSize };
        if (v.Kind == VisionKind.VisionTransformer)
        {
            vision["layers"] = v.Layers[0];
            vision["width"] = v.Width;
            vision["head_width"] = v.HeadWidth;
            vision["mlp_ratio"] = v.MlpRatio;
            vision["patch_size"] = v.PatchSize;
        }
        else
        {
            vision["layers"] = new JsonArray(v.Layers.Select(l => (JsonNode)l).ToArray());
            vision["width"] = v.Width;
            vision["head_width"] = v.HeadWidth;
        }
        var t = spec.Text;
        var text = new JsonObject
        {
            ["context_length"] = t.ContextLength, ["vocab_size"] = t.VocabSize, ["width"] = t.Width,
            ["heads"] = t.Heads, ["layers"] = t.Layers, ["mlp_ratio"] = t.MlpRatio,
        };
        if (t.Pooling == TextPooling.Eos) { text["pool_type"] = "eos"; text["eos_id"] = t.EosId; }
        var p = spec.Preprocess;
        return new JsonObject
        {
            ["model_cfg"] = new JsonObject
            {
                ["embed_dim"] = spec.EmbedDim,
                ["quick_gelu"] = spec.Activation == ActivationKind.QuickGelu,
                ["vision_cfg"] = vision,
                ["text_cfg"] = text,
            },
            ["preprocess_cfg"] = new JsonObject
            {
                ["mean"] = new JsonArray(p.Mean.Select(x => (JsonNode)x).ToArray()),
                ["std"] = new JsonArray(p.Std.Select(x => (JsonNode)x).ToArray()),
                ["interpolation"] = p.Interpolation == InterpolationKind.Bilinear ? "bilinear" : "bicubic",
                ["resize_mode"] = p.ResizeMode.ToString().ToLowerInvariant(),
                ["fill_color"] = p.FillColor,
            },
        };
    }

    /// <summary>Hugging Face's <c>config.json</c> of a <c>CLIPModel</c> for a ViT spec.</summary>
    public static JsonObject HfConfig(ClipSpec spec, Func<string, TensorDType>? dtypeOf = null)
    {
        if (spec.Vision.Kind != VisionKind.VisionTransformer) KeyMapping.HuggingFace(spec); // throws the ResNet error
        var act = spec.Activation == ActivationKind.Gelu ? "gelu" : "quick_gelu";
        var dtype = (dtypeOf?.Invoke("visual.conv1.weight") ?? TensorDType.F32) switch
        {
            TensorDType.F16 => "float16",
            TensorDType.BF16 => "bfloat16",
            TensorDType.F64 => "float64",
            _ => "float32",
        };
        var t = spec.Text;
        var v = spec.Vision;
        return new JsonObject
        {
            ["architectures"] = new JsonArray("CLIPModel"),
            ["model_type"] = "clip",
            ["torch_dtype"] = dtype,
            ["projection_dim"] = spec.EmbedDim,
            ["logit_scale_init_value"] = spec.InitLogitScale,
            ["initializer_factor"] = 1.0,
            ["text_config"] = new JsonObject
            {
                ["model_type"] = "clip_text_model",
                ["hidden_size"] = t.Width,
                ["intermediate_size"] = spec.TextMlpWidth,
                ["num_attention_heads"] = t.Heads,
                ["num_hidden_layers"] = t.Layers,
                ["max_position_embeddings"] = t.ContextLength,
                ["vocab_size"] = t.VocabSize,
                ["hidden_act"] = act,
                ["layer_norm_eps"] = 1e-5,
                ["projection_dim"] = spec.EmbedDim,
                ["bos_token_id"] = 49406,
                // transformers pools at the first eos_token_id; with CLIP's vocabulary that is also argmax's position.
                ["eos_token_id"] = t.EosId,
                ["pad_token_id"] = 1,
            },
            ["vision_config"] = new JsonObject
            {
                ["model_type"] = "clip_vision_model",
                ["hidden_size"] = v.Width,
                ["intermediate_size"] = spec.VisionMlpWidth,
                ["num_attention_heads"] = spec.VisionHeads,
                ["num_hidden_layers"] = v.Layers[0],
                ["image_size"] = v.ImageSize,
                ["patch_size"] = v.PatchSize,
                ["num_channels"] = 3,
                ["hidden_act"] = act,
                ["layer_norm_eps"] = 1e-5,
                ["projection_dim"] = spec.EmbedDim,
            },
        };
    }

    /// <summary>Hugging Face's <c>preprocessor_config.json</c> (CLIPImageProcessor) for a spec's preprocessing.</summary>
    public static JsonObject HfPreprocessorConfig(ClipSpec spec)
    {
        var p = spec.Preprocess;
        return new JsonObject
        {
            ["image_processor_type"] = "CLIPImageProcessor",
            ["do_resize"] = true,
            ["size"] = new JsonObject { ["shortest_edge"] = p.ImageSize },
            ["resample"] = p.Interpolation == InterpolationKind.Bilinear ? 2 : 3,
            ["do_center_crop"] = true,
            ["crop_size"] = new JsonObject { ["height"] = p.ImageSize, ["width"] = p.ImageSize },
            ["do_rescale"] = true,
            ["rescale_factor"] = 1.0 / 255,
            ["do_normalize"] = true,
            ["image_mean"] = new JsonArray(p.Mean.Select(x => (JsonNode)x).ToArray()),
            ["image_std"] = new JsonArray(p.Std.Select(x => (JsonNode)x).ToArray()),
            ["do_convert_rgb"] = true,
        };
    }
}
