using Microsoft.Extensions.Logging;
using ClipGen.Modeling;
using ClipGen.Specs;
using TorchSharp;
using static TorchSharp.torch;

namespace ClipGen.Checkpoints;

/// <summary>A set of named tensors read from a checkpoint; disposing it frees them.</summary>
public sealed class StateDict(Dictionary<string, Tensor> tensors, string source) : IDisposable
{
    public IReadOnlyDictionary<string, Tensor> Tensors => tensors;
    public string Source => source;
    public void Dispose()
    {
        foreach (var t in tensors.Values) t.Dispose();
    }
}

/// <summary>How weights are loaded.</summary>
public sealed record LoadOptions
{
    /// <summary>The default: float32, on the CPU, no notes.</summary>
    public static LoadOptions Default { get; } = new();

    /// <summary>
    /// Keep the checkpoint's floating-point dtype (fp16, bf16) instead of converting to float32; the model is converted to it.
    /// Off by default.
    /// </summary>
    public bool KeepDType { get; init; }

    /// <summary>Where the model goes after loading (CPU when null).</summary>
    public Device? Device { get; init; }

    /// <summary>Told (at Information) of each assumption made, e.g. an activation the file does not record.</summary>
    public ILogger? Logger { get; init; }
}

/// <summary>
/// Reads checkpoints of every supported format and naming into a model, strictly, driven by the spec's key table
/// (<see cref="KeyMapping"/>). Each tensor is copied from the file straight into the model's tensor.
/// </summary>
public static class CheckpointLoader
{
    /// <summary>Reads every tensor of a checkpoint file or folder, with the names as stored (no mapping), converted to <paramref name="convertTo"/> if given.</summary>
    public static StateDict ReadStateDict(string path, ScalarType? convertTo = null)
    {
        using var checkpoint = ClipCheckpoint.Open(path);
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var entry in checkpoint.Source.Entries) tensors.Add(entry.Name, entry.ToTensor(convertTo));
        }
        catch
        {
            foreach (var t in tensors.Values) t.Dispose();
            throw;
        }
        return new StateDict(tensors, path);
    }

    /// <summary>
    /// Checks that the checkpoint's activations (where it records them) are the spec's towers'; when it records none, tells
    /// <paramref name="logger"/> what is assumed.
    /// </summary>
    /// <exception cref="ClipGenException">The checkpoint was trained with another activation.</exception>
    public static void CheckActivation(ClipSpec spec, ClipCheckpoint checkpoint, ILogger? logger)
    {
        if (checkpoint.Activation is not { } claim)
        {
            var what = spec.Vision.Activation == spec.Text.Activation ? Name(spec.Text.Activation)
                : $"{Name(spec.Vision.Activation)} (image) and {Name(spec.Text.Activation)} (text)";
            logger?.LogInformation("{Note}", $"note: weights '{checkpoint.Path}' do not record their activation; assuming {what} as spec '{spec.Name}' says");
            return;
        }
        // A ModifiedResNet has no MLP activation, so only the text tower's counts there.
        bool vitMatters = spec.Vision.Kind == VisionKind.VisionTransformer;
        bool visionOk = !vitMatters || claim.Vision is null || claim.Vision == spec.Vision.Activation;
        bool textOk = claim.Text is null || claim.Text == spec.Text.Activation;
        if (visionOk && textOk) return;
        var (tower, expected, actual) = !textOk ? ("text", claim.Text!.Value, spec.Text.Activation) : ("image", claim.Vision!.Value, spec.Vision.Activation);
        bool oneActivation = claim.Vision is null || claim.Text is null || claim.Vision == claim.Text || !vitMatters;
        var keys = KeyTable.Build(spec);
        bool Fits(ClipModelInfo m) => (claim.Text is null || m.Spec.Text.Activation == claim.Text) && (!vitMatters || claim.Vision is null || m.Spec.Vision.Activation == claim.Vision) && m.Keys.SequenceEqual(keys);
        var twin = ModelRegistry.All.FirstOrDefault(m => Fits(m) && m.Name.StartsWith(spec.Name, StringComparison.Ordinal))
            ?? ModelRegistry.All.FirstOrDefault(Fits);
        var fix = twin is not null ? $"use '{twin.Name}'"
            : oneActivation ? $"set 'activation: {SpecWords.Activation[expected]}' in the spec"
            : $"set '{(tower == "text" ? "text" : "vision")}.activation: {SpecWords.Activation[expected]}' in the spec";
        var origin = claim.Evidence.StartsWith("it is OpenAI", StringComparison.Ordinal) ? " (OpenAI's release)" : $" ({claim.Evidence})";
        var where = oneActivation ? "" : $" in the {tower} tower";
        throw new ClipGenException($"weights '{checkpoint.Path}' were trained with {Name(expected)}{where}{origin} but spec '{spec.Name}' uses {Name(actual)}: {fix}");
    }

    internal static string Name(ActivationKind a) => SpecWords.Display(a);

    /// <summary>
    /// Copies the checkpoint into <paramref name="model"/> (strict: every key of the spec's table, nothing else, exact shapes;
    /// Hugging Face's <c>position_ids</c> are ignored). fp16/bf16 tensors are converted to the model's dtype, or the model is
    /// converted to the checkpoint's dtype with <see cref="LoadOptions.KeepDType"/>. Checks the activation after the keys.
    /// </summary>
    public static void LoadInto(ClipModule model, ClipCheckpoint checkpoint, LoadOptions? options = null)
    {
        options ??= LoadOptions.Default;
        var bound = Bind(checkpoint, model.Spec, model.Plan);
        CheckActivation(model.Spec, checkpoint, options.Logger);
        if (options.KeepDType)
        {
            var floating = bound.SelectMany(b => b.Sources).Select(e => e.DType).Where(d => d is TensorDType.F16 or TensorDType.BF16 or TensorDType.F64).Distinct().ToList();
            if (floating.Count > 1)
                throw new ClipGenException($"weights '{checkpoint.Path}' mix {string.Join(" and ", floating)} tensors; load them without keeping the dtype");
            if (floating.Count == 1) model.to(floating[0].ToScalarType());
        }
        var state = model.state_dict();
        using var _ = no_grad();
        foreach (var key in bound)
        {
            if (!state.TryGetValue(key.Target.Key, out var target))
                throw new InvalidOperationException($"model {model.Spec.Name} has no tensor '{key.Target.Key}' although its key table lists it");
            key.CopyInto(target);
        }
    }

    /// <summary>
    /// Matches a checkpoint against a spec's key table: for each key, the entries it comes from. Every problem (missing, unexpected,
    /// wrong shape) is reported together, by the checkpoint's own names, in one <see cref="ClipGenException"/>.
    /// </summary>
    public static IReadOnlyList<BoundKey> Bind(ClipCheckpoint checkpoint, ClipSpec spec) => Bind(checkpoint, spec, ClipPlan.From(spec));

    /// <inheritdoc cref="Bind(ClipCheckpoint, ClipSpec)"/>
    public static IReadOnlyList<BoundKey> Bind(ClipCheckpoint checkpoint, ClipSpec spec, ClipPlan plan)
    {
        var layout = checkpoint.Layout;
        var mapping = KeyMapping.For(plan, layout);
        var entries = new Dictionary<string, TensorEntry>(StringComparer.Ordinal);
        foreach (var e in checkpoint.Source.Entries) entries[e.Name] = e;

        var missing = new List<string>();
        var mismatched = new List<string>();
        var used = new HashSet<string>(StringComparer.Ordinal);
        var bound = new List<BoundKey>(mapping.Count);
        foreach (var key in mapping)
        {
            var sources = new TensorEntry[key.Sources.Count];
            bool ok = true;
            for (int i = 0; i < sources.Length; i++)
            {
                var name = key.Sources[i];
                used.Add(name);
                if (!entries.TryGetValue(name, out var entry)) { missing.Add(name); ok = false; continue; }
                if (!entry.Shape.AsSpan().SequenceEqual(key.SourceShapes[i]))
                {
                    mismatched.Add($"{name} is {TensorEntry.FormatShape(entry.Shape)} in the file but {TensorEntry.FormatShape(key.SourceShapes[i])} in the model");
                    ok = false;
                }
                sources[i] = entry;
            }
            if (ok) bound.Add(new BoundKey(key.Target, key.Transform, sources));
        }
        var unexpected = checkpoint.Source.Entries.Select(e => e.Name).Where(n => !used.Contains(n) && !KeyMapping.IsIgnored(n, layout)).ToList();
        if (missing.Count > 0 || unexpected.Count > 0 || mismatched.Count > 0)
        {
            var shapes = layout == WeightLayout.OpenAI ? checkpoint.Source.Entries.ToDictionary(e => e.Name, e => e.Shape) : null;
            throw new ClipGenException(WeightLoading.Report(spec, checkpoint.Path, KeyMapping.Describe(layout), missing, unexpected, mismatched, shapes));
        }
        return bound;
    }
}

/// <summary>One model key bound to the checkpoint entries it is read from.</summary>
public sealed class BoundKey
{
    internal BoundKey(KeyEntry target, KeyTransform transform, TensorEntry[] sources)
    {
        Target = target;
        Transform = transform;
        Sources = sources;
    }

    /// <summary>The key (OpenAI name), shape and dtype in the model.</summary>
    public KeyEntry Target { get; }
    /// <summary>How the entries make the key.</summary>
    public KeyTransform Transform { get; }
    /// <summary>The entries (three for q, k, v).</summary>
    public IReadOnlyList<TensorEntry> Sources { get; }
    /// <summary>The stored dtype (of the first entry).</summary>
    public TensorDType DType => Sources[0].DType;

    /// <summary>Copies into a model tensor of the key's shape (any dtype): straight from the file for <see cref="KeyTransform.Same"/>.</summary>
    public void CopyInto(Tensor target)
    {
        using var _ = no_grad();
        switch (Transform)
        {
            case KeyTransform.Same:
                Sources[0].CopyInto(target);
                break;
            case KeyTransform.Reshape:
                using (var view = target.view(Sources[0].Shape))
                    Sources[0].CopyInto(view);
                break;
            case KeyTransform.Transpose:
                using (var t = Sources[0].ToTensor())
                    target.copy_(t.t());
                break;
            case KeyTransform.Concat:
                long row = 0;
                foreach (var source in Sources)
                {
                    using (var slice = target.narrow(0, row, source.Shape[0]))
                    using (var t = source.ToTensor())
                        slice.copy_(t);
                    row += source.Shape[0];
                }
                break;
        }
    }

    /// <summary>Reads the key as a new tensor in OpenAI's layout, in the stored dtype or converted to <paramref name="convertTo"/>.</summary>
    public Tensor Read(ScalarType? convertTo = null)
    {
        var type = convertTo ?? DType.ToScalarType();
        var result = empty(Target.Shape.ToArray(), type);
        try
        {
            CopyInto(result);
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
    }
}
