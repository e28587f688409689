using ClipGen.Specs;

namespace ClipGen.Checkpoints;

/// <summary>One key of a model's key table and the checkpoint tensors it comes from in one layout (with their shapes).</summary>
public sealed record MappedKey(KeyEntry Target, IReadOnlyList<string> Sources, IReadOnlyList<long[]> SourceShapes, KeyTransform Transform);

/// <summary>
/// A spec's key table mapped onto one published layout (<see cref="WeightLayout"/>). The names come from the blocks of the
/// spec's <see cref="ClipPlan"/>; loading and conversion are both driven by it, so a key that is in the table is handled everywhere.
/// </summary>
public static class KeyMapping
{
    /// <summary>The mapping of <paramref name="plan"/>'s keys in <paramref name="layout"/>.</summary>
    /// <exception cref="ClipGenException">The layout cannot hold this model (for example Hugging Face and a ModifiedResNet).</exception>
    public static IReadOnlyList<MappedKey> For(ClipPlan plan, WeightLayout layout)
    {
        if (!plan.Supports(layout, out var why)) throw new ClipGenException(why);
        var result = new List<MappedKey>(plan.Keys.Count);
        foreach (var key in plan.Keys)
        {
            var source = key.In(layout) ?? throw new ClipGenException(
                $"spec '{plan.Name}': the {Describe(layout)} layout has no place for '{key.Entry.Key}'");
            result.Add(new MappedKey(key.Entry, source.Names.ToArray(), source.Shapes.Select(s => s.ToArray()).ToArray(), source.Transform));
        }
        return result;
    }

    /// <summary>The mapping of a spec's keys in <paramref name="layout"/>.</summary>
    public static IReadOnlyList<MappedKey> For(ClipSpec spec, WeightLayout layout) => For(ClipPlan.From(spec), layout);

    /// <summary>Checkpoint tensors that no model key uses and that strict loading ignores: Hugging Face's <c>position_ids</c> buffers.</summary>
    public static bool IsIgnored(string name, WeightLayout layout) =>
        layout == WeightLayout.HuggingFace && name.EndsWith(".position_ids", StringComparison.Ordinal);

    /// <summary>
    /// Guesses the layout from the tensor names: Hugging Face when any starts with <c>text_model.</c>, <c>vision_model.</c> or
    /// <c>visual_projection.</c>; open_clip's own (CustomTextCLIP, timm towers) when any starts with <c>text.</c> or
    /// <c>visual.trunk.</c>; OpenAI's otherwise (which is also open_clip's <c>CLIP</c> layout).
    /// </summary>
    public static WeightLayout Detect(IEnumerable<string> names)
    {
        bool openClip = false;
        foreach (var n in names)
        {
            if (n.StartsWith("text_model.", StringComparison.Ordinal) || n.StartsWith("vision_model.", StringComparison.Ordinal)
                || n.StartsWith("visual_projection.", StringComparison.Ordinal))
                return WeightLayout.HuggingFace;
            if (n.StartsWith("text.", StringComparison.Ordinal) || n.StartsWith("visual.trunk.", StringComparison.Ordinal) || n.StartsWith("visual.head.", StringComparison.Ordinal))
                openClip = true;
        }
        return openClip ? WeightLayout.OpenClip : WeightLayout.OpenAI;
    }

    /// <summary>A layout's name in messages.</summary>
    public static string Describe(WeightLayout layout) => layout switch
    {
        WeightLayout.OpenAI => "OpenAI",
        WeightLayout.OpenClip => "open_clip",
        _ => "Hugging Face",
    };
}
