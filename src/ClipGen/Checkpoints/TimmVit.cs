using System.Text.Json;
using ClipGen.Specs;

namespace ClipGen.Checkpoints;

/// <summary>
/// timm's SigLIP ViTs (<c>vit_*_siglip_*</c>, timm 1.0.15's <c>vision_transformer.py</c>), which open_clip's SigLIP configs name
/// in <c>vision_cfg.timm_model_name</c>: what each name builds. All of them have no class token, the attention-pool head
/// (<c>global_pool='map'</c>), a patch bias, no pre-norm, LayerNorm eps 1e-6. A config's <c>timm_model_kwargs</c> override them.
/// </summary>
public sealed record TimmVit(string Name, int ImageSize, int PatchSize, int Width, int Depth, int Heads, double MlpRatio, ActivationKind Activation)
{
    /// <summary>timm's <c>class_token</c>.</summary>
    public bool ClassToken { get; init; }
    /// <summary>timm's <c>global_pool</c>: <c>map</c> (the attention head), <c>avg</c> or <c>token</c>.</summary>
    public VisionPooling Pool { get; init; } = VisionPooling.Attention;
    /// <summary>timm's <c>pre_norm</c> (a LayerNorm before the blocks; the patch embedding then has no bias).</summary>
    public bool PreNorm { get; init; }
    /// <summary>timm's <c>fc_norm</c>: the final norm after pooling instead of before.</summary>
    public bool FcNorm { get; init; }
    /// <summary>timm's <c>init_values</c> (LayerScale), or null.</summary>
    public double? InitValues { get; init; }

    /// <summary>timm's LayerNorm epsilon for ViTs.</summary>
    public const double NormEps = 1e-6;

    static readonly TimmVit[] Known = Build().ToArray();

    static IEnumerable<TimmVit> Build()
    {
        const ActivationKind gelu = ActivationKind.Gelu, tanh = ActivationKind.GeluTanh;
        yield return new("vit_base_patch32_siglip_256", 256, 32, 768, 12, 12, 4.0, tanh);
        foreach (var size in new[] { 224, 256, 384, 512 }) yield return new($"vit_base_patch16_siglip_{size}", size, 16, 768, 12, 12, 4.0, gelu);
        foreach (var size in new[] { 256, 384 }) yield return new($"vit_large_patch16_siglip_{size}", size, 16, 1024, 24, 16, 4.0, gelu);
        yield return new("vit_large_patch16_siglip_512", 512, 16, 1024, 24, 16, 4.0, tanh);
        foreach (var size in new[] { 224, 378, 384 }) yield return new($"vit_so400m_patch14_siglip_{size}", size, 14, 1152, 27, 16, 3.7362, gelu);
        foreach (var size in new[] { 256, 384, 512 }) yield return new($"vit_so400m_patch16_siglip_{size}", size, 16, 1152, 27, 16, 3.7362, tanh);
        foreach (var size in new[] { 256, 384 }) yield return new($"vit_giantopt_patch16_siglip_{size}", size, 16, 1536, 40, 16, 4.0, tanh);
    }

    /// <summary>The timm model of a name, or null when ClipGen does not know it.</summary>
    public static TimmVit? Find(string name) => Known.FirstOrDefault(k => k.Name == name);

    /// <summary>Every known name.</summary>
    public static IEnumerable<string> Names => Known.Select(k => k.Name);

    /// <summary>
    /// The model with open_clip's <c>timm_model_kwargs</c> applied (<c>embed_dim</c>, <c>depth</c>, <c>num_heads</c>,
    /// <c>patch_size</c>, <c>img_size</c>, <c>mlp_ratio</c>); any other kwarg is refused, since it would change the architecture
    /// in a way this table does not know.
    /// </summary>
    public TimmVit With(JsonElement? kwargs, string where)
    {
        if (kwargs is not { } kw) return this;
        var result = this;
        foreach (var p in kw.EnumerateObject())
        {
            var at = where + "." + p.Name;
            result = p.Name switch
            {
                "embed_dim" => result with { Width = ConfigValues.IntValue(p.Value, at, 1) },
                "depth" => result with { Depth = ConfigValues.IntValue(p.Value, at, 1) },
                "num_heads" => result with { Heads = ConfigValues.IntValue(p.Value, at, 1) },
                "patch_size" => result with { PatchSize = ConfigValues.IntValue(p.Value, at, 1) },
                "img_size" => result with { ImageSize = ConfigValues.IntValue(p.Value, at, 1) },
                "mlp_ratio" => result with { MlpRatio = ConfigValues.DoubleValue(p.Value, at, 0) },
                "class_token" => result with { ClassToken = Bool(p.Value, at) },
                "pre_norm" => result with { PreNorm = Bool(p.Value, at) },
                "fc_norm" => result with { FcNorm = Bool(p.Value, at) },
                "init_values" => result with { InitValues = p.Value.ValueKind == JsonValueKind.Null ? null : ConfigValues.DoubleValue(p.Value, at, 0) },
                "global_pool" => result with
                {
                    Pool = Word(p.Value, at) switch
                    {
                        "map" => VisionPooling.Attention,
                        "avg" => VisionPooling.Mean,
                        "token" => VisionPooling.ClassToken,
                        var w => throw new ClipGenException($"{at} '{w}' is not one ClipGen has (map, avg, token)"),
                    },
                },
                "act_layer" => result with
                {
                    Activation = Word(p.Value, at) switch
                    {
                        "gelu" => ActivationKind.Gelu,
                        "gelu_tanh" => ActivationKind.GeluTanh,
                        "quick_gelu" => ActivationKind.QuickGelu,
                        var w => throw new ClipGenException($"{at} '{w}' is not an activation ClipGen has (gelu, gelu_tanh, quick_gelu)"),
                    },
                },
                _ => throw new ClipGenException($"{at}: timm kwarg '{p.Name}' is not one ClipGen can apply (embed_dim, depth, num_heads, patch_size, img_size, mlp_ratio, class_token, global_pool, pre_norm, fc_norm, init_values, act_layer)"),
            };
        }
        return result;
    }

    static bool Bool(JsonElement v, string at) => v.ValueKind switch
    {
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => throw new ClipGenException($"{at} must be true or false, not {v.GetRawText()}"),
    };

    static string Word(JsonElement v, string at) =>
        v.ValueKind == JsonValueKind.String ? v.GetString()! : throw new ClipGenException($"{at} must be a string, not {v.GetRawText()}");
}
