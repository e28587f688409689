using ClipGen.Specs;

namespace ClipGen.Modeling;

/// <summary>A compiled-in model: its spec, its generated type, a factory and its key table.</summary>
public sealed record ClipModelInfo(ClipSpec Spec, Type ModelType, Func<ClipModule> Create, IReadOnlyList<KeyEntry> Keys)
{
    public string Name => Spec.Name;
    public IReadOnlyList<string> Aliases => Spec.Aliases.ToArray();
    public long ParameterCount => Keys.Where(k => k.Kind == KeyKind.Parameter).Sum(k => k.Elements);

    /// <summary>The spec as canonical YAML (what a user's spec file <c>extends:</c>).</summary>
    public string SpecYaml => SpecYamlWriter.Write(Spec);
}

/// <summary>
/// Every compiled-in model, by name and alias. Generated code registers each assembly's models at load
/// (a module initializer), so the built-ins of ClipGen and the specs of any referencing project are all here.
/// </summary>
public static class ModelRegistry
{
    static readonly object Gate = new();
    static readonly List<ClipModelInfo> Models = new();

    static ModelRegistry()
    {
        // Make sure the built-in models of this assembly are registered even if nothing touched them yet.
        System.Runtime.CompilerServices.RuntimeHelpers.RunModuleConstructor(typeof(ModelRegistry).Module.ModuleHandle);
    }

    /// <summary>Called by generated code.</summary>
    public static void Register(IEnumerable<ClipModelInfo> models)
    {
        lock (Gate)
            foreach (var m in models)
                if (!Models.Any(x => x.Name == m.Name && x.ModelType == m.ModelType)) Models.Add(m);
    }

    /// <summary>All registered models, sorted by name.</summary>
    public static IReadOnlyList<ClipModelInfo> All
    {
        get { lock (Gate) return Models.OrderBy(m => m.Name, StringComparer.Ordinal).ToList(); }
    }

    /// <summary>Finds a model by name or alias (exact first, then case-insensitive).</summary>
    public static ClipModelInfo? Find(string nameOrAlias)
    {
        var all = All;
        return all.FirstOrDefault(m => m.Name == nameOrAlias)
            ?? all.FirstOrDefault(m => m.Aliases.Contains(nameOrAlias))
            ?? all.FirstOrDefault(m => string.Equals(m.Name, nameOrAlias, StringComparison.OrdinalIgnoreCase) || m.Aliases.Any(a => string.Equals(a, nameOrAlias, StringComparison.OrdinalIgnoreCase)));
    }

    /// <summary>Like <see cref="Find"/>, but an unknown name is a <see cref="ClipGenException"/> with a suggestion.</summary>
    public static ClipModelInfo Get(string nameOrAlias)
    {
        var m = Find(nameOrAlias);
        if (m is not null) return m;
        var names = All.SelectMany(x => new[] { x.Name }.Concat(x.Aliases)).ToList();
        var near = SpecResolver.Nearest(nameOrAlias, names);
        throw new ClipGenException($"unknown model '{nameOrAlias}'" + (near is null ? "" : $" (did you mean '{near}'?)") + "; give the name or alias of a compiled-in model (ModelRegistry.All), or the path of a .yaml spec") { Setting = ClipGenSetting.Model };
    }

    /// <summary>The built-in specs as parsed documents, so that a user's spec file may <c>extends:</c> them.</summary>
    public static IReadOnlyList<SpecDocument> Library => All.Select(m => SpecDocument.Parse("<built-in " + m.Name + ">", m.SpecYaml)).ToList();
}
