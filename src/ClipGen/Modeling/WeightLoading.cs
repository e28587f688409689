using ClipGen.Specs;
using TorchSharp;
using static TorchSharp.torch;

namespace ClipGen.Modeling;

/// <summary>Strict loading of named tensors into a model, driven by the model's key table.</summary>
public static class WeightLoading
{
    const int MaxListed = 8;

    /// <summary>
    /// Copies <paramref name="weights"/> into <paramref name="model"/>. Missing keys, unexpected keys and shape
    /// mismatches are all reported together, by name, in a <see cref="ClipGenException"/>; nothing is copied then.
    /// Tensors of another dtype (fp16, bf16) are converted to the model's dtype by <c>copy_</c>.
    /// </summary>
    public static void Load(ClipModule model, IReadOnlyDictionary<string, Tensor> weights, string source)
    {
        var state = model.state_dict();
        var problems = Check(model.Spec, state.ToDictionary(kv => kv.Key, kv => kv.Value.shape), weights.ToDictionary(kv => kv.Key, kv => kv.Value.shape), source);
        if (problems is not null) throw new ClipGenException(problems);
        using var _ = no_grad();
        foreach (var (key, target) in state)
        {
            var src = weights[key];
            if (src.device != target.device || src.dtype != target.dtype) target.copy_(src.to(target.dtype, target.device));
            else target.copy_(src);
        }
    }

    /// <summary>The mismatch report of a set of weights against a model's keys, or null when they fit exactly.</summary>
    public static string? Check(ClipSpec spec, IReadOnlyDictionary<string, long[]> model, IReadOnlyDictionary<string, long[]> file, string source)
    {
        var missing = model.Keys.Where(k => !file.ContainsKey(k)).ToList();
        var unexpected = file.Keys.Where(k => !model.ContainsKey(k)).ToList();
        var mismatched = model.Keys.Where(file.ContainsKey).Where(k => !model[k].SequenceEqual(file[k]))
            .Select(k => $"{k} is [{string.Join(",", file[k])}] in the file but [{string.Join(",", model[k])}] in the model").ToList();
        if (missing.Count == 0 && unexpected.Count == 0 && mismatched.Count == 0) return null;
        return Report(spec, source, "OpenAI", missing, unexpected, mismatched, file);
    }

    /// <summary>
    /// The one-line report of missing and unexpected keys and shape mismatches (each list cut at a few entries), with a hint
    /// naming the compiled-in models whose key table the file fits, when <paramref name="openAIShapes"/> (the file's keys in OpenAI names) is given.
    /// </summary>
    public static string Report(ClipSpec spec, string source, string layout, IReadOnlyList<string> missing, IReadOnlyList<string> unexpected, IReadOnlyList<string> mismatched, IReadOnlyDictionary<string, long[]>? openAIShapes)
    {
        var parts = new List<string>();
        if (missing.Count > 0) parts.Add($"{missing.Count} missing key(s): {List(missing)}");
        if (unexpected.Count > 0) parts.Add($"{unexpected.Count} unexpected key(s): {List(unexpected)}");
        if (mismatched.Count > 0) parts.Add($"{mismatched.Count} shape mismatch(es): " + string.Join(", ", mismatched.Take(MaxListed)) + (mismatched.Count > MaxListed ? ", …" : ""));
        var hint = "";
        if (openAIShapes is not null)
        {
            var fits = ModelRegistry.All.Where(m => m.Name != spec.Name && m.Keys.Count == openAIShapes.Count && m.Keys.All(k => openAIShapes.TryGetValue(k.Key, out var s) && s.SequenceEqual(k.Shape))).Select(m => m.Name).ToList();
            if (fits.Count > 0) hint = $"; these weights look like {string.Join(" or ", fits)}";
        }
        return $"weights '{source}' ({layout} names) do not fit spec '{spec.Name}': {string.Join("; ", parts)}{hint}";
    }

    static string List(IReadOnlyList<string> keys) => string.Join(", ", keys.Take(MaxListed)) + (keys.Count > MaxListed ? $", … ({keys.Count - MaxListed} more)" : "");
}
