using System.Globalization;
using System.Text;
using System.Text.Json;
using ClipGen.Specs;

namespace ClipGen.Checkpoints;

/// <summary>A spec inferred from a checkpoint, and the assumptions made on the way (one line each).</summary>
public sealed record InferredSpec(ClipSpec Spec, IReadOnlyList<string> Notes);

/// <summary>
/// Infers a spec from a checkpoint's shapes, as OpenAI's <c>build_model</c> does: ViT or ResNet, widths, depths, patch size,
/// image size (from the positional embedding's grid), embedding width, context length, vocabulary. What shapes cannot tell comes
/// from the checkpoint's config when it has one (open_clip's <c>model_cfg</c>, Hugging Face's <c>config.json</c>): heads, activation,
/// text pooling, preprocessing. Without a config, heads are width/64 (OpenAI's rule) and the activation is QuickGELU (OpenAI's),
/// each reported in <see cref="InferredSpec.Notes"/>.
/// </summary>
public static class SpecInference
{
    /// <summary>Opens <paramref name="path"/> (file or folder) and infers its spec.</summary>
    public static InferredSpec Infer(string path, string? name = null)
    {
        using var checkpoint = ClipCheckpoint.Open(path);
        return Infer(checkpoint, name);
    }

    /// <summary>Infers the spec of an open checkpoint; <paramref name="name"/> names it (default: from the file or folder name).</summary>
    /// <exception cref="ClipGenException">The tensors are not a CLIP model's.</exception>
    public static InferredSpec Infer(ClipCheckpoint checkpoint, string? name = null)
    {
        var shapes = checkpoint.Source.Entries.ToDictionary(e => e.Name, e => e.Shape, StringComparer.Ordinal);
        var notes = new List<string>();
        var s = checkpoint.Naming == CheckpointNaming.HuggingFace ? FromHuggingFace(checkpoint, shapes) : FromOpenAI(checkpoint, shapes, notes);
        s.Name = Sanitize(name ?? DefaultName(checkpoint.Path));

        if (checkpoint.Activation is { } claim) s.Activation = claim.Activation;
        else
        {
            s.Activation = ActivationKind.QuickGelu;
            notes.Add($"note: weights '{checkpoint.Path}' do not record their activation; assuming QuickGELU (OpenAI's); if they were trained with GELU, set 'activation: gelu' in the spec");
        }

        var yaml = s.ToYaml();
        ClipSpec spec;
        try { spec = SpecResolver.ResolveSingle("<inferred from " + checkpoint.Path + ">", yaml); }
        catch (SpecException e) { throw new ClipGenException($"weights '{checkpoint.Path}': the inferred spec is not valid ({e.Message.ReplaceLineEndings(" ")})", e); }
        notes.Insert(0, $"inferred spec '{spec.Name}' from '{checkpoint.Path}': {Describe(spec)}");
        return new InferredSpec(spec, notes);
    }

    /// <summary>A one-line summary of a spec's architecture.</summary>
    public static string Describe(ClipSpec s)
    {
        var v = s.Vision;
        var vision = v.Kind == VisionKind.VisionTransformer
            ? $"ViT image {v.ImageSize} patch {v.PatchSize} width {v.Width} layers {v.Layers[0]} heads {s.VisionHeads} mlp {s.VisionMlpWidth}"
            : $"ModifiedResNet image {v.ImageSize} layers [{string.Join(",", v.Layers)}] width {v.Width} attention-pool heads {s.VisionHeads}";
        var t = s.Text;
        return $"{vision}; text width {t.Width} layers {t.Layers} heads {t.Heads} context {t.ContextLength} vocab {t.VocabSize}; embed {s.EmbedDim}; {CheckpointLoader.Name(s.Activation)}; pooling {(t.Pooling == TextPooling.Eos ? "eos " + t.EosId : "argmax")}";
    }

    static Draft FromOpenAI(ClipCheckpoint checkpoint, Dictionary<string, long[]> shapes, List<string> notes)
    {
        long[] Need(string key) => shapes.TryGetValue(key, out var v) ? v
            : throw new ClipGenException($"weights '{checkpoint.Path}': cannot infer a CLIP spec, there is no '{key}' (found {shapes.Count} tensors{(shapes.Count > 0 ? ", e.g. " + string.Join(", ", shapes.Keys.Take(3)) : "")})");
        var cfg = checkpoint.OpenClipModelConfig;
        var visionCfg = Object(cfg, "vision_cfg");
        var textCfg = Object(cfg, "text_cfg");
        var d = new Draft();

        bool vit = shapes.ContainsKey("visual.proj");
        if (vit)
        {
            var conv = Need("visual.conv1.weight");
            d.VisionWidth = conv[0];
            d.PatchSize = conv[^1];
            d.VisionLayers = [CountLayers(shapes.Keys, "visual.transformer.resblocks.")];
            long grid = (long)Math.Round(Math.Sqrt(Need("visual.positional_embedding")[0] - 1));
            d.ImageSize = d.PatchSize * grid;
            if (d.VisionLayers[0] > 0) d.VisionMlpRatio = (double)Need("visual.transformer.resblocks.0.mlp.c_fc.weight")[0] / d.VisionWidth;
        }
        else
        {
            d.VisionLayers = Enumerable.Range(1, 4).Select(b => (long)shapes.Keys.Where(k => k.StartsWith($"visual.layer{b}.", StringComparison.Ordinal)).Select(k => k.Split('.')[2]).Distinct().Count()).ToArray();
            d.VisionWidth = Need("visual.layer1.0.conv1.weight")[0];
            long output = (long)Math.Round(Math.Sqrt(Need("visual.attnpool.positional_embedding")[0] - 1));
            d.ImageSize = output * 32;
        }
        d.EmbedDim = Need("text_projection")[1];
        d.ContextLength = Need("positional_embedding")[0];
        d.VocabSize = Need("token_embedding.weight")[0];
        d.TextWidth = Need("ln_final.weight")[0];
        d.TextLayers = CountLayers(shapes.Keys, "transformer.resblocks.");
        if (d.TextLayers > 0) d.TextMlpRatio = (double)Need("transformer.resblocks.0.mlp.c_fc.weight")[0] / d.TextWidth;

        if (Int(visionCfg, "head_width") is { } hw) d.VisionHeadWidth = hw;
        else if (visionCfg is not null) d.VisionHeadWidth = 64; // open_clip's CLIPVisionCfg default
        else
        {
            d.VisionHeadWidth = 64;
            long width = vit ? d.VisionWidth : d.VisionWidth * 32;
            if (width % 64 != 0) notes.Add($"note: vision heads follow OpenAI's rule head_width = 64, which does not divide width {width}; pass a spec if the model differs");
        }
        if (Int(textCfg, "heads") is { } th) d.TextHeads = th;
        else if (textCfg is not null) d.TextHeads = 8; // open_clip's CLIPTextCfg default
        else
        {
            d.TextHeads = Math.Max(1, d.TextWidth / 64);
            notes.Add($"note: text heads = width/64 = {d.TextHeads} (OpenAI's rule; the file does not record heads){(d.TextWidth % 64 != 0 ? "; the width is not a multiple of 64, so pass a spec" : "")}");
        }
        if (cfg is not null && Object(checkpoint.Config, "preprocess_cfg") is { } pre)
        {
            d.Mean = Doubles(pre, "mean");
            d.Std = Doubles(pre, "std");
            d.Interpolation = Str(pre, "interpolation");
            d.ResizeMode = Str(pre, "resize_mode");
        }
        return d;
    }

    static Draft FromHuggingFace(ClipCheckpoint checkpoint, Dictionary<string, long[]> shapes)
    {
        long[] Need(string key) => shapes.TryGetValue(key, out var v) ? v
            : throw new ClipGenException($"weights '{checkpoint.Path}': cannot infer a CLIP spec from Hugging Face names, there is no '{key}'");
        if (checkpoint.Config is not { } cfg)
            throw new ClipGenException($"weights '{checkpoint.Path}' have Hugging Face names but no config.json beside them (it gives the heads and activation); open the model's folder, or pass a spec");
        var vc = Object(cfg, "vision_config");
        var tc = Object(cfg, "text_config");
        var d = new Draft();
        var patch = Need("vision_model.embeddings.patch_embedding.weight");
        d.VisionWidth = patch[0];
        d.PatchSize = patch[^1];
        d.VisionLayers = [CountLayers(shapes.Keys, "vision_model.encoder.layers.")];
        d.ImageSize = d.PatchSize * (long)Math.Round(Math.Sqrt(Need("vision_model.embeddings.position_embedding.weight")[0] - 1));
        if (d.VisionLayers[0] > 0) d.VisionMlpRatio = (double)Need("vision_model.encoder.layers.0.mlp.fc1.weight")[0] / d.VisionWidth;
        d.EmbedDim = Need("visual_projection.weight")[0];
        d.ContextLength = Need("text_model.embeddings.position_embedding.weight")[0];
        d.VocabSize = Need("text_model.embeddings.token_embedding.weight")[0];
        d.TextWidth = Need("text_model.final_layer_norm.weight")[0];
        d.TextLayers = CountLayers(shapes.Keys, "text_model.encoder.layers.");
        if (d.TextLayers > 0) d.TextMlpRatio = (double)Need("text_model.encoder.layers.0.mlp.fc1.weight")[0] / d.TextWidth;
        long visionHeads = Int(vc, "num_attention_heads") ?? 12; // CLIPVisionConfig default
        d.VisionHeadWidth = d.VisionWidth / Math.Max(1, visionHeads);
        d.TextHeads = Int(tc, "num_attention_heads") ?? 8; // CLIPTextConfig default
        if (Double(cfg, "logit_scale_init_value") is { } ls) d.InitLogitScale = ls;
        // transformers pools the first eos_token_id position, except the legacy eos_token_id == 2 (argmax).
        var eos = Int(tc, "eos_token_id") ?? 2;
        if (eos != 2) { d.Pooling = "eos"; d.EosId = eos; }
        return d;
    }

    static long CountLayers(IEnumerable<string> keys, string prefix) =>
        keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal)).Select(k => k[prefix.Length..].Split('.')[0]).Distinct().Count();

    static JsonElement? Object(JsonElement? parent, string name) =>
        parent is { ValueKind: JsonValueKind.Object } p && p.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Object ? v : null;

    static long? Int(JsonElement? parent, string name) =>
        parent is { ValueKind: JsonValueKind.Object } p && p.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var n) ? n : null;

    static double? Double(JsonElement? parent, string name) =>
        parent is { ValueKind: JsonValueKind.Object } p && p.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : null;

    static string? Str(JsonElement parent, string name) =>
        parent.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    static double[]? Doubles(JsonElement parent, string name) =>
        parent.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Array && v.EnumerateArray().All(x => x.ValueKind == JsonValueKind.Number)
            ? v.EnumerateArray().Select(x => x.GetDouble()).ToArray() : null;

    static readonly string[] GenericStems = ["model", "open_clip_model", "open_clip_pytorch_model", "pytorch_model", "model.safetensors.index", "openai_state_dict", "openai_jit", "state_dict", "weights"];

    static string DefaultName(string path)
    {
        var full = System.IO.Path.GetFullPath(path).TrimEnd(System.IO.Path.DirectorySeparatorChar);
        if (Directory.Exists(full)) return System.IO.Path.GetFileName(full);
        var stem = System.IO.Path.GetFileNameWithoutExtension(full);
        if (GenericStems.Contains(stem, StringComparer.OrdinalIgnoreCase))
            return System.IO.Path.GetFileName(System.IO.Path.GetDirectoryName(full)) is { Length: > 0 } parent ? parent : stem;
        return stem;
    }

    static string Sanitize(string name)
    {
        var sb = new StringBuilder();
        foreach (var c in name) sb.Append(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '-');
        if (sb.Length == 0 || !char.IsAsciiLetter(sb[0])) sb.Insert(0, "clip-");
        return sb.ToString();
    }

    sealed class Draft
    {
        public string Name = "";
        public ActivationKind Activation;
        public long EmbedDim, ImageSize, PatchSize, VisionWidth, VisionHeadWidth = 64, ContextLength, VocabSize, TextWidth, TextHeads, TextLayers;
        public long[] VisionLayers = [];
        public double VisionMlpRatio = 4, TextMlpRatio = 4, InitLogitScale = SpecDefaults.ClipInitLogitScale;
        public string Pooling = "argmax";
        public long EosId = SpecDefaults.EosId;
        public double[]? Mean, Std;
        public string? Interpolation, ResizeMode;

        static string N(double v) => v.ToString("R", CultureInfo.InvariantCulture);

        public string ToYaml()
        {
            var b = new StringBuilder();
            b.Append("name: \"").Append(Name).Append("\"\n");
            b.Append("embed_dim: ").Append(EmbedDim).Append('\n');
            b.Append("activation: ").Append(Activation == ActivationKind.Gelu ? "gelu" : "quick_gelu").Append('\n');
            b.Append("init_logit_scale: ").Append(N(InitLogitScale)).Append('\n');
            b.Append("vision:\n  image_size: ").Append(ImageSize).Append('\n');
            if (VisionLayers.Length == 1)
            {
                b.Append("  patch_size: ").Append(PatchSize).Append('\n');
                b.Append("  layers: ").Append(VisionLayers[0]).Append('\n');
                b.Append("  mlp_ratio: ").Append(N(VisionMlpRatio)).Append('\n');
            }
            else b.Append("  layers: [").Append(string.Join(", ", VisionLayers)).Append("]\n");
            b.Append("  width: ").Append(VisionWidth).Append('\n');
            b.Append("  head_width: ").Append(VisionHeadWidth).Append('\n');
            b.Append("text:\n  context_length: ").Append(ContextLength).Append('\n');
            b.Append("  vocab_size: ").Append(VocabSize).Append('\n');
            b.Append("  width: ").Append(TextWidth).Append('\n');
            b.Append("  heads: ").Append(TextHeads).Append('\n');
            b.Append("  layers: ").Append(TextLayers).Append('\n');
            b.Append("  mlp_ratio: ").Append(N(TextMlpRatio)).Append('\n');
            b.Append("  pooling: ").Append(Pooling).Append('\n');
            b.Append("  eos_id: ").Append(EosId).Append('\n');
            b.Append("tokenizer:\n  kind: clip_bpe\n");
            b.Append("preprocess:\n");
            b.Append("  mean: [").Append(string.Join(", ", (Mean ?? SpecDefaults.OpenAIMean).Select(N))).Append("]\n");
            b.Append("  std: [").Append(string.Join(", ", (Std ?? SpecDefaults.OpenAIStd).Select(N))).Append("]\n");
            b.Append("  interpolation: ").Append(Interpolation ?? "bicubic").Append('\n');
            b.Append("  resize_mode: ").Append(ResizeMode ?? "shortest").Append('\n');
            return b.ToString();
        }
    }
}
