using System.Text.Json;
using ClipGen.Specs;

namespace ClipGen.Checkpoints;

/// <summary>Where a checkpoint comes from, which decides its config file and naming.</summary>
public enum CheckpointEcosystem
{
    /// <summary>A single file with OpenAI names and no config (OpenAI's <c>.pt</c> files, <c>torch.save(state_dict)</c>, a plain safetensors).</summary>
    OpenAI,
    /// <summary>An open_clip hub folder or file: <c>open_clip_config.json</c> + <c>open_clip_model.safetensors</c> / <c>open_clip_pytorch_model.bin</c>.</summary>
    OpenClip,
    /// <summary>A Hugging Face <c>CLIPModel</c> folder or file: <c>config.json</c> + <c>model.safetensors</c> (or sharded).</summary>
    HuggingFace,
}

/// <summary>
/// What a checkpoint says about the activations it was trained with (per tower; null where it does not say), and where it says it.
/// </summary>
public sealed record ActivationClaim(ActivationKind? Vision, ActivationKind? Text, string Evidence)
{
    /// <summary>A claim for both towers.</summary>
    public ActivationClaim(ActivationKind both, string evidence) : this(both, both, evidence) { }

    /// <summary>The claimed activation: the text tower's, else the image tower's.</summary>
    public ActivationKind Activation => Text ?? Vision ?? ActivationKind.QuickGelu;
}

/// <summary>
/// A CLIP checkpoint opened from a file or a folder: its tensors (<see cref="Source"/>), their naming, its config
/// (open_clip's <c>model_cfg</c> or Hugging Face's <c>config.json</c>) and what it records about the activation.
/// </summary>
public sealed class ClipCheckpoint : IDisposable
{
    /// <summary>The config file names ClipGen looks for.</summary>
    public const string OpenClipConfigFile = "open_clip_config.json", HfConfigFile = "config.json";

    ClipCheckpoint(string path, string weightsFile, ICheckpointSource source, CheckpointEcosystem ecosystem, JsonElement? config, string? configFile)
    {
        Path = path;
        WeightsFile = weightsFile;
        Source = source;
        Ecosystem = ecosystem;
        Config = config;
        ConfigFile = configFile;
        Layout = KeyMapping.Detect(source.Entries.Select(e => e.Name));
        Activation = FindActivation();
    }

    /// <summary>The path the user gave (file or folder).</summary>
    public string Path { get; }
    /// <summary>The weights file that was opened (the index for a sharded checkpoint).</summary>
    public string WeightsFile { get; }
    /// <summary>The tensors.</summary>
    public ICheckpointSource Source { get; }
    /// <summary>OpenAI, open_clip or Hugging Face.</summary>
    public CheckpointEcosystem Ecosystem { get; }
    /// <summary>How the tensors are named (from the names themselves).</summary>
    public WeightLayout Layout { get; }
    /// <summary>open_clip's whole <c>open_clip_config.json</c> or Hugging Face's <c>config.json</c>, when there is one.</summary>
    public JsonElement? Config { get; }
    /// <summary>The config file, when there is one.</summary>
    public string? ConfigFile { get; }
    /// <summary>The activation the checkpoint records, or null when it does not say.</summary>
    public ActivationClaim? Activation { get; }

    /// <summary>
    /// Opens a checkpoint file (any format <see cref="CheckpointReader.Open"/> reads, or a <c>*.safetensors.index.json</c>), or a folder:
    /// an open_clip hub folder (<c>open_clip_config.json</c> + <c>open_clip_model.safetensors</c> or <c>open_clip_pytorch_model.bin</c>),
    /// a Hugging Face folder (<c>config.json</c> + <c>model.safetensors</c>, <c>model.safetensors.index.json</c> or <c>pytorch_model.bin</c>),
    /// or a folder with one <c>model.safetensors</c>. A file named as an ecosystem names it picks up the config beside it.
    /// </summary>
    /// <exception cref="ClipGenException">Nothing usable at the path, a damaged file, or a malformed config.</exception>
    public static ClipCheckpoint Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        string weights;
        if (Directory.Exists(path))
            weights = PickWeightsInFolder(path);
        else if (File.Exists(path))
            weights = path;
        else
            throw new ClipGenException($"{path}: weights file or folder not found");

        var folder = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(weights))!;
        var fileName = System.IO.Path.GetFileName(weights);
        CheckpointEcosystem ecosystem = CheckpointEcosystem.OpenAI;
        string? configFile = null;
        if (fileName.StartsWith("open_clip_", StringComparison.Ordinal) && File.Exists(System.IO.Path.Combine(folder, OpenClipConfigFile)))
        {
            ecosystem = CheckpointEcosystem.OpenClip;
            configFile = System.IO.Path.Combine(folder, OpenClipConfigFile);
        }
        else if (fileName is "model.safetensors" or "model.safetensors.index.json" or "pytorch_model.bin" && IsHfClipConfig(System.IO.Path.Combine(folder, HfConfigFile)))
        {
            ecosystem = CheckpointEcosystem.HuggingFace;
            configFile = System.IO.Path.Combine(folder, HfConfigFile);
        }
        JsonElement? config = configFile is null ? null : ReadJson(configFile);

        var source = weights.EndsWith(".index.json", StringComparison.OrdinalIgnoreCase)
            ? CheckpointReader.OpenShardedSafetensors(weights)
            : CheckpointReader.Open(weights);
        try
        {
            var checkpoint = new ClipCheckpoint(path, weights, source, ecosystem, config, configFile);
            if (checkpoint.Layout == WeightLayout.HuggingFace && ecosystem == CheckpointEcosystem.OpenAI)
                return new ClipCheckpoint(path, weights, source, CheckpointEcosystem.HuggingFace, null, null);
            return checkpoint;
        }
        catch
        {
            source.Dispose();
            throw;
        }
    }

    static string PickWeightsInFolder(string folder)
    {
        string In(string name) => System.IO.Path.Combine(folder, name);
        if (File.Exists(In(OpenClipConfigFile)))
        {
            foreach (var name in new[] { "open_clip_model.safetensors", "open_clip_pytorch_model.bin" })
                if (File.Exists(In(name))) return In(name);
            throw new ClipGenException($"{folder}: an open_clip folder (it has {OpenClipConfigFile}) without open_clip_model.safetensors or open_clip_pytorch_model.bin");
        }
        foreach (var name in new[] { "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin" })
            if (File.Exists(In(name))) return In(name);
        throw new ClipGenException($"{folder}: no weights found (expected open_clip_config.json + open_clip_model.safetensors, config.json + model.safetensors or model.safetensors.index.json, or a model.safetensors)");
    }

    static bool IsHfClipConfig(string file)
    {
        if (!File.Exists(file)) return false;
        var json = ReadJson(file);
        return json.ValueKind == JsonValueKind.Object
            && ((json.TryGetProperty("model_type", out var t) && t.ValueKind == JsonValueKind.String && t.GetString() is "clip" or "siglip")
                || json.TryGetProperty("vision_config", out _) || json.TryGetProperty("text_config", out _));
    }

    static JsonElement ReadJson(string file)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(file));
            return doc.RootElement.Clone();
        }
        catch (JsonException e) { throw new ClipGenException($"{file}: not valid JSON ({e.Message.ReplaceLineEndings(" ")})"); }
    }

    /// <summary>open_clip's <c>model_cfg</c>, when this is an open_clip checkpoint with a config.</summary>
    public JsonElement? OpenClipModelConfig =>
        Ecosystem == CheckpointEcosystem.OpenClip && Config is { } c && c.TryGetProperty("model_cfg", out var m) && m.ValueKind == JsonValueKind.Object ? m : null;

    ActivationClaim? FindActivation()
    {
        var config = System.IO.Path.GetFileName(ConfigFile ?? "");
        if (OpenClipModelConfig is { } mc)
        {
            // open_clip: quick_gelu picks the activation of its own towers, act_kwargs {approximate: tanh} switches GELU to its tanh
            // form; a timm tower uses its own activation (the timm model's), whatever quick_gelu says.
            bool quick = ConfigValues.Bool(mc, "quick_gelu", config + " model_cfg") ?? false;
            var text = OpenClipTowerActivation(ConfigValues.Object(mc, "text_cfg", config + " model_cfg"), quick, config + " text_cfg");
            var visionCfg = ConfigValues.Object(mc, "vision_cfg", config + " model_cfg");
            var vision = visionCfg is { } vc && ConfigValues.String(vc, "timm_model_name", config + " vision_cfg") is { Length: > 0 } timm
                ? TimmVit.Find(timm)?.With(ConfigValues.Object(vc, "timm_model_kwargs", config + " vision_cfg"), config + " vision_cfg.timm_model_kwargs").Activation
                : OpenClipTowerActivation(visionCfg, quick, config + " vision_cfg");
            return new ActivationClaim(vision, text,
                $"{config} says quick_gelu: {(quick ? "true" : "false")}" + (mc.TryGetProperty("quick_gelu", out _) ? "" : " (open_clip's default)"));
        }
        if (Ecosystem == CheckpointEcosystem.HuggingFace && Config is { } hf)
        {
            // CLIPTextConfig/CLIPVisionConfig default to quick_gelu; SigLIP's configs to gelu_pytorch_tanh.
            var fallback = ConfigValues.String(hf, "model_type", config) == "siglip" ? "gelu_pytorch_tanh" : "quick_gelu";
            ActivationKind? Tower(string name)
            {
                var tower = ConfigValues.Object(hf, name, config);
                var act = tower is { } t ? ConfigValues.String(t, "hidden_act", config + " " + name) ?? fallback : fallback;
                return HfActivation(act) ?? throw new ClipGenException($"{ConfigFile}: {name}.hidden_act '{act}' is not supported (ClipGen has quick_gelu, gelu and gelu_pytorch_tanh)");
            }
            return new ActivationClaim(Tower("vision_config"), Tower("text_config"), $"{config} says hidden_act");
        }
        if (Source.Metadata.TryGetValue("provenance", out var p) && p == "openai")
            return new ActivationClaim(ActivationKind.QuickGelu, "it is OpenAI's release (a TorchScript archive), trained with QuickGELU");
        if (Source.Metadata.TryGetValue("activation", out var m) && SpecWords.Activation.TryParse(m, out var both))
        {
            ActivationKind? Meta(string key) => Source.Metadata.TryGetValue(key, out var v) && SpecWords.Activation.TryParse(v, out var a) ? a : both;
            return new ActivationClaim(Meta("activation.vision"), Meta("activation.text"), $"its metadata says activation: {m}");
        }
        return null;
    }

    static ActivationKind? OpenClipTowerActivation(JsonElement? towerCfg, bool quick, string where)
    {
        if (quick) return ActivationKind.QuickGelu;
        if (towerCfg is { } t && ConfigValues.Object(t, "act_kwargs", where) is { } kw
            && ConfigValues.String(kw, "approximate", where + ".act_kwargs") is { } approx)
            return approx switch
            {
                "tanh" => ActivationKind.GeluTanh,
                "none" => ActivationKind.Gelu,
                _ => throw new ClipGenException($"{where}: act_kwargs.approximate '{approx}' is not GELU's 'none' or 'tanh'"),
            };
        return ActivationKind.Gelu;
    }

    /// <summary>The activation of a transformers <c>hidden_act</c> name, or null for one ClipGen lacks.</summary>
    public static ActivationKind? HfActivation(string hiddenAct) => hiddenAct switch
    {
        "quick_gelu" => ActivationKind.QuickGelu,
        "gelu" => ActivationKind.Gelu,
        "gelu_pytorch_tanh" or "gelu_new" => ActivationKind.GeluTanh,
        _ => null,
    };

    /// <inheritdoc/>
    public void Dispose() => Source.Dispose();
}
