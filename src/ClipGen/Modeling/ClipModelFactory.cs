using Microsoft.Extensions.Logging;
using ClipGen.Checkpoints;
using ClipGen.Specs;
using TorchSharp;
using static TorchSharp.torch;

namespace ClipGen.Modeling;

/// <summary>Finds specs by name, alias or YAML path, and builds models from them.</summary>
public static class ClipModelFactory
{
    /// <summary>True when the argument names a spec file rather than a compiled-in model.</summary>
    public static bool IsSpecPath(string nameOrPath) =>
        nameOrPath.EndsWith(".yaml", StringComparison.OrdinalIgnoreCase) || nameOrPath.EndsWith(".yml", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// The spec of a compiled-in model (name or alias) or of a YAML file (run-time spec; it may <c>extends:</c> a
    /// built-in). A malformed file is a <see cref="ClipGenException"/> whose message is <c>file(line,col): error CLIPGEN###: …</c>.
    /// </summary>
    public static ClipSpec ResolveSpec(string nameOrPath)
    {
        if (!IsSpecPath(nameOrPath)) return ModelRegistry.Get(nameOrPath).Spec;
        if (!File.Exists(nameOrPath)) throw new ClipGenException($"spec file '{nameOrPath}' does not exist");
        return LoadSpecFile(nameOrPath);
    }

    /// <summary>Parses and resolves one spec file at run time.</summary>
    public static ClipSpec LoadSpecFile(string path)
    {
        string text;
        // A regular file of bounded size (a FIFO or /dev/zero named .yaml is refused, not read forever).
        text = System.Text.Encoding.UTF8.GetString(IO.InputFiles.ReadAllBytes(path, Limits.MaxSpecFileBytes, "spec file"));
        try
        {
            return SpecResolver.ResolveSingle(path, text, ModelRegistry.Library);
        }
        catch (SpecException e)
        {
            throw new ClipGenException(e.Message, e);
        }
    }

    /// <summary>Creates a model with fresh weights: the generated class for a compiled-in spec, a run-time model otherwise.</summary>
    public static ClipModule Create(string nameOrPath)
    {
        if (!IsSpecPath(nameOrPath)) return ModelRegistry.Get(nameOrPath).Create();
        return new RuntimeClipModel(ResolveSpec(nameOrPath));
    }

    /// <summary>Creates a model for a resolved spec: the generated class if one with equal spec is compiled in.</summary>
    public static ClipModule Create(ClipSpec spec)
    {
        var info = ModelRegistry.Find(spec.Name);
        return info is not null && info.Spec == spec ? info.Create() : new RuntimeClipModel(spec);
    }

    /// <summary>Creates the model, loads weights strictly and switches it to evaluation mode.</summary>
    public static ClipModule Load(string nameOrPath, string weightsPath, Device? device = null) =>
        Load(nameOrPath, weightsPath, new LoadOptions { Device = device });

    /// <summary>
    /// Creates the model of a spec (name, alias or YAML path) and loads a checkpoint of any supported format into it
    /// (file or folder: see <see cref="ClipCheckpoint.Open"/>), strictly, then switches it to evaluation mode.
    /// </summary>
    /// <exception cref="ClipGenException">The checkpoint cannot be read, does not fit the spec, or was trained with another activation.</exception>
    public static ClipModule Load(string nameOrPath, string weightsPath, LoadOptions options)
    {
        // A YAML path always gives a run-time model (as Create(nameOrPath) does), a name the generated class.
        var spec = ResolveSpec(nameOrPath);
        return LoadCore(spec, () => IsSpecPath(nameOrPath) ? new RuntimeClipModel(spec) : Create(nameOrPath), weightsPath, options);
    }

    /// <summary>Creates the model of <paramref name="spec"/> and loads a checkpoint into it (see <see cref="Load(string, string, LoadOptions)"/>).</summary>
    public static ClipModule Load(ClipSpec spec, string weightsPath, LoadOptions? options = null) =>
        LoadCore(spec, () => Create(spec), weightsPath, options);

    static ClipModule LoadCore(ClipSpec spec, Func<ClipModule> create, string weightsPath, LoadOptions? options)
    {
        options ??= LoadOptions.Default;
        // A spec too large for memory is the first thing to say, before the checkpoint is opened or compared with it.
        ModelLimits.CheckFits(spec, ClipPlan.From(spec));
        using var checkpoint = ClipCheckpoint.Open(weightsPath);
        // Check before allocating the model: a wrong file fails fast.
        CheckpointLoader.Bind(checkpoint, spec);
        CheckpointLoader.CheckActivation(spec, checkpoint, null);
        var model = create();
        try
        {
            CheckpointLoader.LoadInto(model, checkpoint, options);
            if (options.Device is not null) model.to(options.Device);
            model.eval();
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Loads a checkpoint whose spec is inferred from it (<see cref="SpecInference.Infer(ClipCheckpoint, string?)"/>).</summary>
    public static ClipModule Load(string weightsPath, LoadOptions? options = null)
    {
        ClipSpec spec;
        using (var checkpoint = ClipCheckpoint.Open(weightsPath))
        {
            var inferred = SpecInference.Infer(checkpoint);
            foreach (var note in inferred.Notes) options?.Logger?.LogInformation("{Note}", note);
            spec = inferred.Spec;
        }
        return Load(spec, weightsPath, options);
    }
}
