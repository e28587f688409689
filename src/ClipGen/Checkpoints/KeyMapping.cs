using ClipGen.Specs;

namespace ClipGen.Checkpoints;

/// <summary>How the tensors of a checkpoint are named.</summary>
public enum CheckpointNaming
{
    /// <summary>OpenAI's <c>state_dict()</c> names, which open_clip's CLIP keeps (<c>visual.conv1.weight</c>, <c>transformer.resblocks.0.attn.in_proj_weight</c>, …).</summary>
    OpenAI,
    /// <summary>Hugging Face <c>CLIPModel</c> names (<c>vision_model.embeddings.patch_embedding.weight</c>, split q/k/v, Linear projections).</summary>
    HuggingFace,
}

/// <summary>How one key of the model is stored in a checkpoint.</summary>
public enum KeyTransform
{
    /// <summary>One tensor, as is.</summary>
    Same,
    /// <summary>One 2-D tensor, transposed (Hugging Face stores the projections as <c>Linear</c> weights).</summary>
    Transpose,
    /// <summary>Three tensors, q, k, v, stacked along the first dimension into <c>in_proj_weight</c>/<c>in_proj_bias</c>.</summary>
    SplitQkv,
}

/// <summary>One key of a model's key table and the checkpoint tensors it comes from (with their shapes).</summary>
public sealed record MappedKey(KeyEntry Target, IReadOnlyList<string> Sources, IReadOnlyList<long[]> SourceShapes, KeyTransform Transform);

/// <summary>
/// Maps a spec's key table (OpenAI names, <see cref="KeyTable.Build"/>) onto the names and shapes of each ecosystem.
/// Both loading and conversion are driven by it, so a key that is in the table is handled everywhere.
/// </summary>
public static class KeyMapping
{
    /// <summary>The mapping for <paramref name="naming"/>.</summary>
    /// <exception cref="ClipGenException">Hugging Face naming for a ModifiedResNet spec (Hugging Face has no ResNet CLIP).</exception>
    public static IReadOnlyList<MappedKey> For(ClipSpec spec, CheckpointNaming naming) =>
        naming == CheckpointNaming.OpenAI ? OpenAI(spec) : HuggingFace(spec);

    /// <summary>OpenAI / open_clip naming: every key as in the key table.</summary>
    public static IReadOnlyList<MappedKey> OpenAI(ClipSpec spec) =>
        KeyTable.Build(spec).Select(k => new MappedKey(k, [k.Key], [k.Shape.ToArray()], KeyTransform.Same)).ToList();

    /// <summary>Hugging Face <c>CLIPModel</c> naming.</summary>
    public static IReadOnlyList<MappedKey> HuggingFace(ClipSpec spec)
    {
        if (spec.Vision.Kind != VisionKind.VisionTransformer)
            throw new ClipGenException($"spec '{spec.Name}' has a ModifiedResNet image tower, which Hugging Face's CLIPModel does not have (it has only ViT CLIPs); use OpenAI or open_clip files for ResNet models");
        if (spec.Loss == LossKind.SigLip)
            throw new ClipGenException($"spec '{spec.Name}' is a SigLIP model; Hugging Face stores those as SiglipModel, which ClipGen does not map");
        var result = new List<MappedKey>();
        foreach (var k in KeyTable.Build(spec))
        {
            var shape = k.Shape.ToArray();
            var (name, transform) = HfName(k.Key);
            switch (transform)
            {
                case KeyTransform.Transpose:
                    result.Add(new MappedKey(k, [name], [[shape[1], shape[0]]], transform));
                    break;
                case KeyTransform.SplitQkv:
                    var part = shape.ToArray();
                    part[0] /= 3;
                    result.Add(new MappedKey(k, new[] { "q", "k", "v" }.Select(p => name.Replace("{}", p, StringComparison.Ordinal)).ToList(), [part, part, part], transform));
                    break;
                default:
                    result.Add(new MappedKey(k, [name], [shape], transform));
                    break;
            }
        }
        return result;
    }

    /// <summary>Checkpoint tensors that no model key uses and that strict loading ignores: Hugging Face's <c>position_ids</c> buffers.</summary>
    public static bool IsIgnored(string name, CheckpointNaming naming) =>
        naming == CheckpointNaming.HuggingFace && name.EndsWith(".position_ids", StringComparison.Ordinal);

    /// <summary>Guesses the naming from the tensor names: Hugging Face when any starts with <c>text_model.</c> or <c>vision_model.</c>.</summary>
    public static CheckpointNaming Detect(IEnumerable<string> names) =>
        names.Any(n => n.StartsWith("text_model.", StringComparison.Ordinal) || n.StartsWith("vision_model.", StringComparison.Ordinal)
                       || n.StartsWith("visual_projection.", StringComparison.Ordinal))
            ? CheckpointNaming.HuggingFace : CheckpointNaming.OpenAI;

    static (string Name, KeyTransform Transform) HfName(string key)
    {
        switch (key)
        {
            case "positional_embedding": return ("text_model.embeddings.position_embedding.weight", KeyTransform.Same);
            case "text_projection": return ("text_projection.weight", KeyTransform.Transpose);
            case "logit_scale": return ("logit_scale", KeyTransform.Same);
            case "token_embedding.weight": return ("text_model.embeddings.token_embedding.weight", KeyTransform.Same);
            case "ln_final.weight": return ("text_model.final_layer_norm.weight", KeyTransform.Same);
            case "ln_final.bias": return ("text_model.final_layer_norm.bias", KeyTransform.Same);
            case "visual.class_embedding": return ("vision_model.embeddings.class_embedding", KeyTransform.Same);
            case "visual.positional_embedding": return ("vision_model.embeddings.position_embedding.weight", KeyTransform.Same);
            case "visual.proj": return ("visual_projection.weight", KeyTransform.Transpose);
            case "visual.conv1.weight": return ("vision_model.embeddings.patch_embedding.weight", KeyTransform.Same);
            case "visual.ln_pre.weight": return ("vision_model.pre_layrnorm.weight", KeyTransform.Same); // sic: Hugging Face's spelling
            case "visual.ln_pre.bias": return ("vision_model.pre_layrnorm.bias", KeyTransform.Same);
            case "visual.ln_post.weight": return ("vision_model.post_layernorm.weight", KeyTransform.Same);
            case "visual.ln_post.bias": return ("vision_model.post_layernorm.bias", KeyTransform.Same);
        }
        string tower, rest;
        if (key.StartsWith("visual.transformer.resblocks.", StringComparison.Ordinal)) { tower = "vision_model"; rest = key["visual.transformer.resblocks.".Length..]; }
        else if (key.StartsWith("transformer.resblocks.", StringComparison.Ordinal)) { tower = "text_model"; rest = key["transformer.resblocks.".Length..]; }
        else throw new InvalidOperationException($"no Hugging Face name for key '{key}'");
        var dot = rest.IndexOf('.');
        var layer = rest[..dot];
        var prefix = $"{tower}.encoder.layers.{layer}.";
        return rest[(dot + 1)..] switch
        {
            "attn.in_proj_weight" => (prefix + "self_attn.{}_proj.weight", KeyTransform.SplitQkv),
            "attn.in_proj_bias" => (prefix + "self_attn.{}_proj.bias", KeyTransform.SplitQkv),
            "attn.out_proj.weight" => (prefix + "self_attn.out_proj.weight", KeyTransform.Same),
            "attn.out_proj.bias" => (prefix + "self_attn.out_proj.bias", KeyTransform.Same),
            "ln_1.weight" => (prefix + "layer_norm1.weight", KeyTransform.Same),
            "ln_1.bias" => (prefix + "layer_norm1.bias", KeyTransform.Same),
            "ln_2.weight" => (prefix + "layer_norm2.weight", KeyTransform.Same),
            "ln_2.bias" => (prefix + "layer_norm2.bias", KeyTransform.Same),
            "mlp.c_fc.weight" => (prefix + "mlp.fc1.weight", KeyTransform.Same),
            "mlp.c_fc.bias" => (prefix + "mlp.fc1.bias", KeyTransform.Same),
            "mlp.c_proj.weight" => (prefix + "mlp.fc2.weight", KeyTransform.Same),
            "mlp.c_proj.bias" => (prefix + "mlp.fc2.bias", KeyTransform.Same),
            _ => throw new InvalidOperationException($"no Hugging Face name for key '{key}'"),
        };
    }
}
