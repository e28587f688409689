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

/// <summary>What a checkpoint says about the activation it was trained with, and where it says it.</summary>
public sealed record ActivationClaim(ActivationKind Activation, string Evidence);

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
        Naming = KeyMapping.Detect(source.Entries.Select(e => e.Name));
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
    public CheckpointNaming Naming { get; }
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
            if (checkpoint.Naming == CheckpointNaming.HuggingFace && ecosystem == CheckpointEcosystem.OpenAI)
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
            && ((json.TryGetProperty("model_type", out var t) && t.ValueKind == JsonValueKind.String && t.GetString() == "clip")
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
            bool quick = mc.TryGetProperty("quick_gelu", out var q) && q.ValueKind == JsonValueKind.True;
            return new ActivationClaim(quick ? ActivationKind.QuickGelu : ActivationKind.Gelu,
                $"{config} says quick_gelu: {(quick ? "true" : "false")}" + (mc.TryGetProperty("quick_gelu", out _) ? "" : " (open_clip's default)"));
        }
        if (Ecosystem == CheckpointEcosystem.HuggingFace && Config is { } hf)
        {
            string? act = null;
            foreach (var tower in new[] { "text_config", "vision_config" })
                if (hf.TryGetProperty(tower, out var t) && t.ValueKind == JsonValueKind.Object && t.TryGetProperty("hidden_act", out var a) && a.ValueKind == JsonValueKind.String)
                {
                    var value = a.GetString()!;
                    if (act is not null && act != value)
                        throw new ClipGenException($"{ConfigFile}: the towers use different activations ({act} and {value}); ClipGen specs have one activation");
                    act = value;
                }
            act ??= "quick_gelu"; // CLIPTextConfig/CLIPVisionConfig default
            return act switch
            {
                "quick_gelu" => new ActivationClaim(ActivationKind.QuickGelu, $"{config} says hidden_act: quick_gelu"),
                "gelu" => new ActivationClaim(ActivationKind.Gelu, $"{config} says hidden_act: gelu"),
                _ => throw new ClipGenException($"{ConfigFile}: hidden_act '{act}' is not supported (ClipGen has quick_gelu and gelu)"),
            };
        }
        if (Source.Metadata.TryGetValue("provenance", out var p) && p == "openai")
            return new ActivationClaim(ActivationKind.QuickGelu, "it is OpenAI's release (a TorchScript archive), trained with QuickGELU");
        if (Source.Metadata.TryGetValue("activation", out var m))
            return m switch
            {
                "quick_gelu" => new ActivationClaim(ActivationKind.QuickGelu, "its metadata says activation: quick_gelu"),
                "gelu" => new ActivationClaim(ActivationKind.Gelu, "its metadata says activation: gelu"),
                _ => null,
            };
        return null;
    }

    /// <inheritdoc/>
    public void Dispose() => Source.Dispose();
}
