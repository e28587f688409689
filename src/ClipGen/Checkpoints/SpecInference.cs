using System.Text;
using System.Text.Json;
using ClipGen.Specs;

namespace ClipGen.Checkpoints;

/// <summary>A spec inferred from a checkpoint, and the assumptions made on the way (one line each).</summary>
public sealed record InferredSpec(ClipSpec Spec, IReadOnlyList<string> Notes);

/// <summary>
/// Infers a spec from a checkpoint. From its config when it has one: open_clip's <c>model_cfg</c> (every family: OpenAI-style
/// ViTs and ResNets, CLIPA, LayerScale, the SigLIP towers named by <c>timm_model_name</c> with <c>timm_model_kwargs</c>) or Hugging
/// Face's <c>config.json</c> (<c>CLIPModel</c>, <c>SiglipModel</c>). Otherwise from the tensors' shapes, as OpenAI's <c>build_model</c>
/// does: what shapes cannot tell (heads, activation, pooling) follows OpenAI's rules, each reported in <see cref="InferredSpec.Notes"/>.
/// Config values of the wrong type or range are errors naming the key (<see cref="ConfigValues"/>).
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
    /// <exception cref="ClipGenException">The tensors are not a CLIP model's, or the config is malformed.</exception>
    public static InferredSpec Infer(ClipCheckpoint checkpoint, string? name = null)
    {
        var shapes = new Dictionary<string, long[]>(StringComparer.Ordinal);
        foreach (var e in checkpoint.Source.Entries) shapes[e.Name] = e.Shape;
        var notes = new List<string>();
        ClipSpec s;
        if (checkpoint.Layout == WeightLayout.HuggingFace) s = FromHuggingFace(checkpoint, shapes);
        else if (checkpoint.OpenClipModelConfig is { } mc) s = FromOpenClip(checkpoint, mc, shapes);
        else if (checkpoint.Layout == WeightLayout.OpenClip)
            throw new ClipGenException($"weights '{checkpoint.Path}' have open_clip's CustomTextCLIP / timm names but no {ClipCheckpoint.OpenClipConfigFile} beside them (it gives the architecture); open the model's folder, or pass a spec");
        else s = FromShapes(checkpoint, shapes, notes);
        var specName = Sanitize(name ?? DefaultName(checkpoint.Path));
        s = s with { Name = specName, ClassName = SpecResolver.DefaultClassName(specName) };

        // The written YAML, read back, is the one place that checks every rule of the format.
        var yaml = SpecYamlWriter.Write(s);
        ClipSpec spec;
        try { spec = SpecResolver.ResolveSingle("<inferred from " + checkpoint.Path + ">", yaml); }
        catch (SpecException e) { throw new ClipGenException($"weights '{checkpoint.Path}': the inferred spec is not valid ({e.Message.ReplaceLineEndings(" ")})", e); }
        notes.Insert(0, $"inferred spec '{spec.Name}' from '{checkpoint.Path}': {Describe(spec)}");
        return new InferredSpec(spec, notes);
    }

    /// <summary>A one-line summary of a spec's architecture.</summary>
    public static string Describe(ClipSpec s)
    {
        var p = ClipPlan.From(s);
        var v = s.Vision;
        string vision;
        if (p.Vision is VitPlan vit)
        {
            vision = $"ViT image {v.ImageSize} patch {v.PatchSize} width {v.Width} layers {v.Layers[0]} heads {vit.Heads} mlp {vit.Transformer.Block.Mlp.Hidden}";
            if (!vit.ClassToken) vision += " no-class-token";
            if (vit.Pool != VisionPooling.ClassToken) vision += " pool " + SpecWords.VisionPooling[vit.Pool];
            if (v.LayerScale is not null) vision += " layer-scale";
            if (!vit.Proj) vision += " no-proj";
        }
        else vision = $"ModifiedResNet image {v.ImageSize} layers [{string.Join(",", v.Layers)}] width {v.Width} attention-pool heads {((ResNetPlan)p.Vision).AttnPool.Heads}";
        var t = s.Text;
        var act = v.Activation == t.Activation ? SpecWords.Display(t.Activation) : $"{SpecWords.Display(v.Activation)} (image) / {SpecWords.Display(t.Activation)} (text)";
        return $"{vision}; text width {t.Width} layers {t.Layers} heads {t.Heads} context {t.ContextLength} vocab {t.VocabSize}" +
               (t.CausalMask ? "" : " non-causal") + $"; embed {s.EmbedDim}; {act}; pooling {SpecWords.TextPooling[t.Pooling]}" +
               (t.Pooling == TextPooling.Eos ? " " + t.EosId : "") + (s.Loss == LossKind.SigLip ? "; sigmoid loss" : "");
    }

    // ---------------------------------------------------------------- open_clip's model_cfg

    static ClipSpec FromOpenClip(ClipCheckpoint checkpoint, JsonElement mc, Dictionary<string, long[]> shapes)
    {
        var file = Path.GetFileName(checkpoint.ConfigFile ?? ClipCheckpoint.OpenClipConfigFile);
        var where = file + " model_cfg";
        var claim = checkpoint.Activation;
        int embed = ConfigValues.Int(mc, "embed_dim", where, 1) ?? throw new ClipGenException($"{where} has no embed_dim");
        var vc = ConfigValues.Object(mc, "vision_cfg", where) ?? EmptyObject;
        var tc = ConfigValues.Object(mc, "text_cfg", where) ?? EmptyObject;
        bool siglip = shapes.ContainsKey("logit_bias") || ConfigValues.Double(mc, "init_logit_bias", where) is not null;

        var vision = VisionFromOpenClip(vc, where + ".vision_cfg", embed, claim?.Vision ?? ActivationKind.Gelu);
        var text = TextFromOpenClip(tc, where + ".text_cfg", claim?.Text ?? ActivationKind.Gelu);
        var spec = new ClipSpec
        {
            EmbedDim = embed,
            InitLogitScale = ConfigValues.Double(mc, "init_logit_scale", where) ?? SpecDefaults.ClipInitLogitScale,
            Loss = siglip ? LossKind.SigLip : LossKind.Clip,
            InitLogitBias = ConfigValues.Double(mc, "init_logit_bias", where) ?? SpecDefaults.InitLogitBias,
            CustomText = ConfigValues.Bool(mc, "custom_text", where) ?? false,
            Vision = vision,
            Text = text,
            Tokenizer = TokenizerFromOpenClip(tc, where + ".text_cfg"),
            Preprocess = Preprocess(checkpoint, vision.ImageSize, file),
        };
        return spec;
    }

    static VisionSpec VisionFromOpenClip(JsonElement vc, string where, int embed, ActivationKind act)
    {
        int imageSize = ConfigValues.Int(vc, "image_size", where, 1) ?? 224;
        var norm = NormEps(vc, where);
        if (ConfigValues.Bool(vc, "attentional_pool", where) == true)
            throw new ClipGenException($"{where}: attentional_pool (CoCa's attention pooler) is not a ClipGen feature");
        if (ConfigValues.String(vc, "timm_model_name", where) is { Length: > 0 } timmName)
        {
            var timm = (TimmVit.Find(timmName) ?? throw new ClipGenException(
                    $"{where}.timm_model_name '{timmName}' is not a timm model ClipGen knows (it knows the SigLIP ViTs: {string.Join(", ", TimmVit.Names)})"))
                .With(ConfigValues.Object(vc, "timm_model_kwargs", where), where + ".timm_model_kwargs");
            var pool = (ConfigValues.String(vc, "timm_pool", where) ?? "avg") switch
            {
                "map" => VisionPooling.Attention,
                "avg" => VisionPooling.Mean,
                "token" => VisionPooling.ClassToken,
                "" => timm.Pool,
                var other => throw new ClipGenException($"{where}.timm_pool '{other}' is not one ClipGen has (map, avg, token)"),
            };
            var proj = (ConfigValues.String(vc, "timm_proj", where) ?? "linear") switch
            {
                "none" or "" => ProjectionKind.None,
                "linear" => ProjectionKind.Linear,
                var other => throw new ClipGenException($"{where}.timm_proj '{other}' is not one ClipGen has (none, linear)"),
            };
            if (ConfigValues.Bool(vc, "timm_proj_bias", where) == true)
                throw new ClipGenException($"{where}.timm_proj_bias: a timm tower's projection with a bias is not a ClipGen feature");
            return new VisionSpec
            {
                Kind = VisionKind.VisionTransformer, ImageSize = timm.ImageSize, PatchSize = timm.PatchSize, Width = timm.Width,
                Layers = new[] { timm.Depth }.ToEquatableArray(), HeadWidth = timm.Width / timm.Heads, MlpRatio = timm.MlpRatio,
                Activation = timm.Activation, Pool = pool, ClassToken = timm.ClassToken, PatchBias = !timm.PreNorm, LnPre = timm.PreNorm,
                FinalLnAfterPool = timm.FcNorm, LayerScale = timm.InitValues, NormEps = TimmVit.NormEps, Proj = proj, TimmModelName = timmName,
            };
        }
        if (ConfigValues.Get(vc, "layers") is { ValueKind: JsonValueKind.Array } list)
        {
            var layers = list.EnumerateArray().Select((x, i) => ConfigValues.IntValue(x, $"{where}.layers[{i}]", 1)).ToArray();
            if (layers.Length != 4) throw new ClipGenException($"{where}.layers must be one int (ViT) or four (ModifiedResNet), not {layers.Length}");
            return new VisionSpec
            {
                Kind = VisionKind.ModifiedResNet, ImageSize = imageSize, Width = ConfigValues.Int(vc, "width", where, 1) ?? 64,
                Layers = layers.ToEquatableArray(), HeadWidth = ConfigValues.Int(vc, "head_width", where, 1) ?? 64, MlpRatio = SpecDefaults.MlpRatio,
                Activation = act, NormEps = norm,
            };
        }
        var poolType = ConfigValues.String(vc, "pool_type", where) ?? "tok";
        return new VisionSpec
        {
            Kind = VisionKind.VisionTransformer, ImageSize = imageSize,
            PatchSize = ConfigValues.Int(vc, "patch_size", where, 1) ?? 16,
            Width = ConfigValues.Int(vc, "width", where, 1) ?? 768,
            Layers = new[] { ConfigValues.Int(vc, "layers", where, 1) ?? 12 }.ToEquatableArray(),
            HeadWidth = ConfigValues.Int(vc, "head_width", where, 1) ?? 64,
            MlpRatio = ConfigValues.Double(vc, "mlp_ratio", where, 0) ?? SpecDefaults.MlpRatio,
            Activation = act,
            Pool = poolType switch
            {
                "tok" => VisionPooling.ClassToken,
                "avg" => VisionPooling.Mean,
                _ => throw new ClipGenException($"{where}.pool_type '{poolType}' is not one ClipGen has (tok, avg)"),
            },
            LnPre = !(ConfigValues.Bool(vc, "no_ln_pre", where) ?? false),
            FinalLnAfterPool = ConfigValues.Bool(vc, "final_ln_after_pool", where) ?? false,
            LayerScale = ConfigValues.Double(vc, "ls_init_value", where, 0),
            NormEps = norm,
        };
    }

    static TextSpec TextFromOpenClip(JsonElement tc, string where, ActivationKind act)
    {
        if (ConfigValues.String(tc, "hf_model_name", where) is { Length: > 0 } hf)
            throw new ClipGenException($"{where}.hf_model_name '{hf}': Hugging Face text towers are not a ClipGen feature (it has open_clip's TextTransformer)");
        if (ConfigValues.Bool(tc, "embed_cls", where) == true)
            throw new ClipGenException($"{where}.embed_cls (CoCa's text class token) is not a ClipGen feature");
        var pool = ConfigValues.String(tc, "pool_type", where) ?? "argmax";
        var proj = ConfigValues.String(tc, "proj_type", where) ?? "linear";
        var hfTokenizer = ConfigValues.String(tc, "hf_tokenizer_name", where) ?? "";
        var (eos, pad) = TokenIds(hfTokenizer, ConfigValues.Int(tc, "pad_id", where, 0));
        return new TextSpec
        {
            ContextLength = ConfigValues.Int(tc, "context_length", where, 2) ?? 77,
            VocabSize = ConfigValues.Int(tc, "vocab_size", where, 1) ?? 49408,
            Width = ConfigValues.Int(tc, "width", where, 1) ?? 512,
            Heads = ConfigValues.Int(tc, "heads", where, 1) ?? 8,
            Layers = ConfigValues.Int(tc, "layers", where, 1) ?? 12,
            MlpRatio = ConfigValues.Double(tc, "mlp_ratio", where, 0) ?? SpecDefaults.MlpRatio,
            Pooling = pool == "tok" ? TextPooling.First
                : SpecWords.TextPooling.TryParse(pool, out var p) ? p
                : throw new ClipGenException($"{where}.pool_type '{pool}' is not one ClipGen has ({string.Join(", ", SpecWords.TextPooling.Words)})"),
            EosId = ConfigValues.Int(tc, "eos_id", where, 0) ?? eos,
            PadId = pad,
            Activation = act,
            CausalMask = !(ConfigValues.Bool(tc, "no_causal_mask", where) ?? false),
            Proj = proj switch
            {
                "linear" => ProjectionKind.Linear,
                "none" => ProjectionKind.None,
                _ => throw new ClipGenException($"{where}.proj_type '{proj}' is not one ClipGen has (linear, none)"),
            },
            ProjBias = proj != "none" && (ConfigValues.Bool(tc, "proj_bias", where) ?? false),
            NormEps = NormEps(tc, where),
            LayerScale = ConfigValues.Double(tc, "ls_init_value", where, 0),
        };
    }

    /// <summary>open_clip's tokenizer of a text config: CLIP's BPE, or the Hub tokenizer it names (SentencePiece or BERT's WordPiece).</summary>
    static TokenizerSpec TokenizerFromOpenClip(JsonElement tc, string where)
    {
        var hf = ConfigValues.String(tc, "hf_tokenizer_name", where) ?? "";
        var kwargs = ConfigValues.Object(tc, "tokenizer_kwargs", where);
        var clean = kwargs is { } kw ? ConfigValues.String(kw, "clean", where + ".tokenizer_kwargs") : null;
        if (clean is not null && !SpecResolver.TokenizerCleans.Contains(clean))
            throw new ClipGenException($"{where}.tokenizer_kwargs.clean '{clean}' is not one of {string.Join(", ", SpecResolver.TokenizerCleans)}");
        if (hf.Length == 0) return new TokenizerSpec { Kind = "clip_bpe" };
        if (hf.Contains("bert", StringComparison.OrdinalIgnoreCase))
            return new TokenizerSpec
            {
                Kind = "wordpiece", File = "vocab.txt", Clean = clean ?? SpecDefaults.TokenizerClean,
                StripSepToken = kwargs is { } k && (ConfigValues.Bool(k, "strip_sep_token", where + ".tokenizer_kwargs") ?? false),
            };
        return new TokenizerSpec { Kind = "sentencepiece", File = IsGemma(hf) ? "tokenizer.model" : "spiece.model", Clean = clean ?? SpecDefaults.TokenizerClean };
    }

    static bool IsGemma(string hfTokenizer) => hfTokenizer.Contains("SigLIP2", StringComparison.OrdinalIgnoreCase) || hfTokenizer.Contains("gemma", StringComparison.OrdinalIgnoreCase);

    /// <summary>End and padding ids of open_clip's tokenizers: CLIP's (49407, 0), T5's SentencePiece (1, 1), Gemma's (1, 0), BERT's (102, 0).</summary>
    static (int Eos, int Pad) TokenIds(string hfTokenizer, int? padId)
    {
        if (hfTokenizer.Length == 0) return (SpecDefaults.EosId, padId ?? SpecDefaults.PadId);
        if (hfTokenizer.Contains("bert", StringComparison.OrdinalIgnoreCase)) return (102, 0);
        return IsGemma(hfTokenizer) ? (1, 0) : (1, 1);
    }

    static double NormEps(JsonElement cfg, string where) =>
        ConfigValues.Object(cfg, "norm_kwargs", where) is { } nk ? ConfigValues.Double(nk, "eps", where + ".norm_kwargs", 0) ?? SpecDefaults.NormEps : SpecDefaults.NormEps;

    static PreprocessSpec Preprocess(ClipCheckpoint checkpoint, int imageSize, string file)
    {
        var pre = checkpoint.Config is { } c ? ConfigValues.Object(c, "preprocess_cfg", file) : null;
        var where = file + " preprocess_cfg";
        string? Word(string key) => pre is { } p ? ConfigValues.String(p, key, where) : null;
        return new PreprocessSpec
        {
            ImageSize = imageSize,
            Mean = (pre is { } p1 ? ConfigValues.Doubles(p1, "mean", where, 3) : null) is { } m ? m.ToEquatableArray() : SpecDefaults.OpenAIMean.ToEquatableArray(),
            Std = (pre is { } p2 ? ConfigValues.Doubles(p2, "std", where, 3) : null) is { } sd ? sd.ToEquatableArray() : SpecDefaults.OpenAIStd.ToEquatableArray(),
            Interpolation = Word("interpolation") is { } i ? Parse(SpecWords.Interpolation, i, where + ".interpolation") : InterpolationKind.Bicubic,
            ResizeMode = Word("resize_mode") is { } r ? Parse(SpecWords.ResizeMode, r, where + ".resize_mode") : ResizeModeKind.Shortest,
            FillColor = pre is { } p3 ? ConfigValues.Int(p3, "fill_color", where, 0) ?? 0 : 0,
        };
    }

    static T Parse<T>(WordTable<T> words, string word, string at) where T : struct, Enum =>
        words.TryParse(word, out var v) ? v : throw new ClipGenException($"{at} '{word}' is not one of {string.Join(", ", words.Words)}");

    static readonly JsonElement EmptyObject = JsonDocument.Parse("{}").RootElement.Clone();

    // ---------------------------------------------------------------- Hugging Face's config.json

    static ClipSpec FromHuggingFace(ClipCheckpoint checkpoint, Dictionary<string, long[]> shapes)
    {
        if (checkpoint.Config is not { } cfg)
            throw new ClipGenException($"weights '{checkpoint.Path}' have Hugging Face names but no config.json beside them (it gives the heads and activation); open the model's folder, or pass a spec");
        var file = Path.GetFileName(checkpoint.ConfigFile ?? ClipCheckpoint.HfConfigFile);
        long[] Need(string key) => shapes.TryGetValue(key, out var v) ? v
            : throw new ClipGenException($"weights '{checkpoint.Path}': cannot infer a spec from Hugging Face names, there is no '{key}'");
        var type = ConfigValues.String(cfg, "model_type", file);
        bool siglip = type == "siglip" || shapes.ContainsKey("vision_model.head.probe");
        var vc = ConfigValues.Object(cfg, "vision_config", file) ?? EmptyObject;
        var tc = ConfigValues.Object(cfg, "text_config", file) ?? EmptyObject;
        string vw = file + " vision_config", tw = file + " text_config";
        var claim = checkpoint.Activation;

        var patch = Need("vision_model.embeddings.patch_embedding.weight");
        int width = (int)patch[0], patchSize = (int)patch[^1];
        int tokens = (int)Need("vision_model.embeddings.position_embedding.weight")[0];
        int grid = (int)Math.Round(Math.Sqrt(siglip ? tokens : tokens - 1));
        int visionLayers = CountLayers(shapes.Keys, "vision_model.encoder.layers.");
        int visionMlp = visionLayers > 0 ? (int)Need("vision_model.encoder.layers.0.mlp.fc1.weight")[0] : 4 * width;
        // CLIPVisionConfig's default heads are 12, SiglipVisionConfig's 12, CLIPTextConfig's 8, SiglipTextConfig's 12.
        int visionHeads = ConfigValues.Int(vc, "num_attention_heads", vw, 1) ?? 12;
        if (width % visionHeads != 0) throw new ClipGenException($"{vw}.num_attention_heads {visionHeads} does not divide the width {width}");
        int textWidth = (int)Need("text_model.final_layer_norm.weight")[0];
        int textLayers = CountLayers(shapes.Keys, "text_model.encoder.layers.");
        int textMlp = textLayers > 0 ? (int)Need("text_model.encoder.layers.0.mlp.fc1.weight")[0] : 4 * textWidth;
        int textHeads = ConfigValues.Int(tc, "num_attention_heads", tw, 1) ?? (siglip ? 12 : 8);
        int embed = siglip ? (int)Need("text_model.head.weight")[0] : (int)Need("visual_projection.weight")[0];
        var vision = new VisionSpec
        {
            Kind = VisionKind.VisionTransformer, ImageSize = patchSize * grid, PatchSize = patchSize, Width = width,
            Layers = new[] { visionLayers }.ToEquatableArray(), HeadWidth = width / visionHeads, MlpRatio = (double)visionMlp / width,
            Activation = claim?.Vision ?? ActivationKind.QuickGelu,
            ClassToken = !siglip, Pool = siglip ? VisionPooling.Attention : VisionPooling.ClassToken, PatchBias = siglip, LnPre = !siglip,
            Proj = siglip ? ProjectionKind.None : ProjectionKind.Linear,
            NormEps = ConfigValues.Double(vc, "layer_norm_eps", vw, 0) ?? (siglip ? 1e-6 : 1e-5),
        };
        // transformers' CLIP pools the first eos_token_id, except the legacy eos_token_id == 2 (argmax); SigLIP pools the last token.
        int eos = ConfigValues.Int(tc, "eos_token_id", tw, 0) ?? (siglip ? 1 : 2);
        var text = new TextSpec
        {
            ContextLength = (int)Need("text_model.embeddings.position_embedding.weight")[0],
            VocabSize = (int)Need("text_model.embeddings.token_embedding.weight")[0],
            Width = textWidth, Heads = textHeads, Layers = textLayers, MlpRatio = (double)textMlp / textWidth,
            Pooling = siglip ? TextPooling.Last : eos == 2 ? TextPooling.Argmax : TextPooling.Eos,
            EosId = siglip || eos != 2 ? eos : SpecDefaults.EosId,
            PadId = ConfigValues.Int(tc, "pad_token_id", tw, 0) ?? (siglip ? 1 : SpecDefaults.PadId),
            Activation = claim?.Text ?? ActivationKind.QuickGelu,
            CausalMask = !siglip, ProjBias = siglip,
            NormEps = ConfigValues.Double(tc, "layer_norm_eps", tw, 0) ?? (siglip ? 1e-6 : 1e-5),
        };
        if (!siglip && textHeads > 0 && textWidth % textHeads != 0) throw new ClipGenException($"{tw}.num_attention_heads {textHeads} does not divide the width {textWidth}");
        return new ClipSpec
        {
            EmbedDim = embed,
            InitLogitScale = ConfigValues.Double(cfg, "logit_scale_init_value", file) ?? SpecDefaults.ClipInitLogitScale,
            Loss = siglip ? LossKind.SigLip : LossKind.Clip,
            Vision = vision, Text = text,
            Tokenizer = siglip ? new TokenizerSpec { Kind = "sentencepiece", File = "spiece.model", Clean = "canonicalize" } : new TokenizerSpec { Kind = "clip_bpe" },
            Preprocess = new PreprocessSpec
            {
                ImageSize = vision.ImageSize,
                Mean = (siglip ? new[] { 0.5, 0.5, 0.5 } : SpecDefaults.OpenAIMean).ToEquatableArray(),
                Std = (siglip ? new[] { 0.5, 0.5, 0.5 } : SpecDefaults.OpenAIStd).ToEquatableArray(),
                ResizeMode = siglip ? ResizeModeKind.Squash : ResizeModeKind.Shortest,
            },
        };
    }

    // ---------------------------------------------------------------- shapes only (OpenAI's names)

    static ClipSpec FromShapes(ClipCheckpoint checkpoint, Dictionary<string, long[]> shapes, List<string> notes)
    {
        long[] Need(string key) => shapes.TryGetValue(key, out var v) ? v
            : throw new ClipGenException($"weights '{checkpoint.Path}': cannot infer a CLIP spec, there is no '{key}' (found {shapes.Count} tensors{(shapes.Count > 0 ? ", e.g. " + string.Join(", ", shapes.Keys.Take(3)) : "")})");
        bool Has(string key) => shapes.ContainsKey(key);

        int textWidth = (int)Need("ln_final.weight")[0];
        int embed = Has("text_projection") ? (int)Need("text_projection")[1]
            : Has("text_projection.weight") ? (int)Need("text_projection.weight")[0]
            : textWidth;
        VisionSpec vision;
        if (Has("visual.conv1.weight") && !Has("visual.layer1.0.conv1.weight"))
        {
            var conv = Need("visual.conv1.weight");
            int width = (int)conv[0], patch = (int)conv[^1];
            bool classToken = Has("visual.class_embedding");
            long tokens = Need("visual.positional_embedding")[0];
            int grid = (int)Math.Round(Math.Sqrt(tokens - (classToken ? 1 : 0)));
            int layers = CountLayers(shapes.Keys, "visual.transformer.resblocks.");
            double mlpRatio = layers > 0 ? (double)Need("visual.transformer.resblocks.0.mlp.c_fc.weight")[0] / width : 4;
            bool attentionPool = Has("visual.attn_pool.latent");
            if (width % 64 != 0) notes.Add($"note: vision heads follow OpenAI's rule head_width = 64, which does not divide width {width}; pass a spec if the model differs");
            vision = new VisionSpec
            {
                Kind = VisionKind.VisionTransformer, ImageSize = patch * grid, PatchSize = patch, Width = width,
                Layers = new[] { layers }.ToEquatableArray(), HeadWidth = 64, MlpRatio = mlpRatio,
                ClassToken = classToken, Pool = attentionPool ? VisionPooling.Attention : classToken ? VisionPooling.ClassToken : VisionPooling.Mean,
                PatchBias = Has("visual.conv1.bias"), LnPre = Has("visual.ln_pre.weight"),
                LayerScale = Has("visual.transformer.resblocks.0.ls_1.gamma") ? 1e-5 : null,
                Proj = Has("visual.proj") ? ProjectionKind.Linear : ProjectionKind.None, NormEps = SpecDefaults.NormEps,
            };
            if (!classToken && !attentionPool) notes.Add("note: the image tower has no class token; assuming it pools the mean of its tokens");
        }
        else
        {
            var layers = Enumerable.Range(1, 4).Select(b => shapes.Keys.Where(k => k.StartsWith($"visual.layer{b}.", StringComparison.Ordinal)).Select(k => k.Split('.')[2]).Distinct().Count()).ToArray();
            int width = (int)Need("visual.layer1.0.conv1.weight")[0];
            int output = (int)Math.Round(Math.Sqrt(Need("visual.attnpool.positional_embedding")[0] - 1));
            if (width * 32 % 64 != 0) notes.Add($"note: vision heads follow OpenAI's rule head_width = 64, which does not divide width {width * 32}; pass a spec if the model differs");
            vision = new VisionSpec
            {
                Kind = VisionKind.ModifiedResNet, ImageSize = output * 32, Width = width, Layers = layers.ToEquatableArray(),
                HeadWidth = 64, MlpRatio = SpecDefaults.MlpRatio, NormEps = SpecDefaults.NormEps,
            };
        }
        int textLayers = CountLayers(shapes.Keys, "transformer.resblocks.");
        int textHeads = Math.Max(1, textWidth / 64);
        notes.Add($"note: text heads = width/64 = {textHeads} (OpenAI's rule; the file does not record heads){(textWidth % 64 != 0 ? "; the width is not a multiple of 64, so pass a spec" : "")}");
        var text = new TextSpec
        {
            ContextLength = (int)Need("positional_embedding")[0], VocabSize = (int)Need("token_embedding.weight")[0],
            Width = textWidth, Heads = textHeads, Layers = textLayers,
            MlpRatio = textLayers > 0 ? (double)Need("transformer.resblocks.0.mlp.c_fc.weight")[0] / textWidth : 4,
            Pooling = TextPooling.Argmax, EosId = SpecDefaults.EosId, PadId = SpecDefaults.PadId,
            Proj = Has("text_projection") || Has("text_projection.weight") ? ProjectionKind.Linear : ProjectionKind.None,
            ProjBias = Has("text_projection.bias"), NormEps = SpecDefaults.NormEps,
            LayerScale = Has("transformer.resblocks.0.ls_1.gamma") ? 1e-5 : null,
        };
        var act = checkpoint.Activation;
        if (act is null)
            notes.Add($"note: weights '{checkpoint.Path}' do not record their activation; assuming QuickGELU (OpenAI's); if they were trained with GELU, set 'activation: gelu' in the spec");
        vision = vision with { Activation = act?.Vision ?? ActivationKind.QuickGelu };
        text = text with { Activation = act?.Text ?? ActivationKind.QuickGelu };
        bool siglip = Has("logit_bias");
        return new ClipSpec
        {
            EmbedDim = embed, InitLogitScale = SpecDefaults.ClipInitLogitScale,
            Loss = siglip ? LossKind.SigLip : LossKind.Clip, InitLogitBias = SpecDefaults.InitLogitBias,
            Vision = vision, Text = text, Tokenizer = new TokenizerSpec { Kind = "clip_bpe" },
            Preprocess = new PreprocessSpec
            {
                ImageSize = vision.ImageSize, Mean = SpecDefaults.OpenAIMean.ToEquatableArray(), Std = SpecDefaults.OpenAIStd.ToEquatableArray(),
            },
        };
    }

    static int CountLayers(IEnumerable<string> keys, string prefix) =>
        keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal)).Select(k => k[prefix.Length..].Split('.')[0]).Distinct().Count();

    static readonly string[] GenericStems = ["model", "open_clip_model", "open_clip_pytorch_model", "pytorch_model", "model.safetensors.index", "openai_state_dict", "openai_jit", "state_dict", "weights"];

    static string DefaultName(string path)
    {
        var full = Path.GetFullPath(path).TrimEnd(Path.DirectorySeparatorChar);
        if (Directory.Exists(full)) return Path.GetFileName(full);
        var stem = Path.GetFileNameWithoutExtension(full);
        if (GenericStems.Contains(stem, StringComparer.OrdinalIgnoreCase))
            return Path.GetFileName(Path.GetDirectoryName(full)) is { Length: > 0 } parent ? parent : stem;
        return stem;
    }

    static string Sanitize(string name)
    {
        var sb = new StringBuilder();
        foreach (var c in name) sb.Append(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '-');
        if (sb.Length == 0 || !char.IsAsciiLetter(sb[0])) sb.Insert(0, "clip-");
        return sb.ToString();
    }
}
