using System.Collections;
using System.Collections.Immutable;
using System.Reflection;
using ClipGen.Generators.Model;
using ClipGen.Specs;
using Xunit;

namespace ClipGen.Generators.Tests;

/// <summary>The pipeline models are plain, equatable data (no Roslyn or YAML objects), so the incremental generator's caching works.</summary>
public class PipelineModelTests
{
    const BindingFlags Instance = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic;

    static readonly Type[] Roots = { typeof(SpecFile), typeof(ModelToEmit), typeof(ResolvedSpecs) };

    static string? Forbidden(Type t)
    {
        var ns = t.Namespace ?? "";
        if (ns.StartsWith("Microsoft.CodeAnalysis", StringComparison.Ordinal)) return "a Roslyn type";
        if (ns.StartsWith("YamlDotNet", StringComparison.Ordinal)) return "a YamlDotNet type";
        if (typeof(SpecNode).IsAssignableFrom(t) || t == typeof(SpecEntry) || t == typeof(SpecDocument)) return "a YAML node of the parser";
        if (t == typeof(object) || t.IsInterface || t.IsAbstract && !t.IsSealed) return "an open type (object, interface or abstract class) that could hold anything";
        if (typeof(Delegate).IsAssignableFrom(t)) return "a delegate";
        return null;
    }

    static string FieldName(FieldInfo f) => f.Name.StartsWith('<') ? f.Name[1..f.Name.IndexOf('>')] : f.Name;

    /// <summary>Every type reachable through the fields of the pipeline models, with the path that reaches it.</summary>
    static Dictionary<Type, string> Reachable()
    {
        var seen = new Dictionary<Type, string>();
        var queue = new Queue<(Type, string)>(Roots.Select(r => (r, r.Name)));
        while (queue.Count > 0)
        {
            var (t, path) = queue.Dequeue();
            if (!seen.TryAdd(t, path)) continue;
            if (t.IsPrimitive || t.IsEnum || t == typeof(string) || t == typeof(decimal)) continue;
            if (t.IsArray) { queue.Enqueue((t.GetElementType()!, path + "[]")); continue; }
            foreach (var g in t.IsGenericType ? t.GetGenericArguments() : Type.EmptyTypes) queue.Enqueue((g, path + "<" + g.Name + ">"));
            // Fields are what an object holds (auto-properties through their backing fields; computed properties hold nothing).
            foreach (var f in t.GetFields(Instance)) queue.Enqueue((f.FieldType, path + "." + FieldName(f)));
        }
        return seen;
    }

    [Fact]
    public void Pipeline_models_hold_no_Roslyn_YAML_or_open_types()
    {
        var bad = Reachable().Select(kv => (Type: kv.Key, Path: kv.Value, Why: Forbidden(kv.Key))).Where(x => x.Why != null).ToList();
        Assert.True(bad.Count == 0, string.Join("\n", bad.Select(b => b.Path + " is " + b.Type.FullName + ": " + b.Why)));
        // The walk really went deep: the spec, its towers, the key table and the locations were all reached.
        var types = Reachable().Keys.ToList();
        foreach (var expected in new[] { typeof(ClipSpec), typeof(VisionSpec), typeof(TextSpec), typeof(PretrainedSpec), typeof(KeyEntry), typeof(SpecDiagnostic), typeof(SpecLocation) })
            Assert.Contains(expected, types);
    }

    [Fact]
    public void Pipeline_model_types_have_value_equality()
    {
        foreach (var t in Reachable().Keys)
        {
            if (t.IsPrimitive || t.IsEnum || t == typeof(string) || t.IsArray) continue;
            if (Nullable.GetUnderlyingType(t) is { } inner && typeof(IEquatable<>).MakeGenericType(inner).IsAssignableFrom(inner)) continue; // Nullable<T> compares with T's equality
            var equatable = typeof(IEquatable<>).MakeGenericType(t);
            Assert.True(equatable.IsAssignableFrom(t), t.FullName + " does not implement IEquatable<itself>, so an equal value would not be cached");
        }
    }

    [Fact]
    public void Arrays_only_appear_inside_EquatableArray()
    {
        foreach (var (t, path) in Reachable())
            if (t.IsArray)
                Assert.True(path.EndsWith("._items", StringComparison.Ordinal), path + " is a bare array (no value equality); use EquatableArray<T>");
    }

    /// <summary>The same walk over real values: the resolved built-in specs hold only allowed objects.</summary>
    [Fact]
    public void Resolved_values_of_the_built_in_specs_are_plain_data()
    {
        var files = Directory.GetFiles(Path.Combine(GeneratorHarness.RepoRoot, "specs"), "*.yaml")
            .Select(p => new SpecFile(p, File.ReadAllText(p))).ToImmutableArray();
        var resolved = SpecParser.Resolve(files, CancellationToken.None);
        Assert.Empty(resolved.Diagnostics);
        Assert.Equal(files.Length, resolved.Models.Count);

        var visited = new HashSet<object>(ReferenceEqualityComparer.Instance);
        int count = 0;
        void Walk(object? value, string path)
        {
            if (value == null) return;
            var t = value.GetType();
            Assert.True(Forbidden(t) == null, path + " holds a " + t.FullName);
            if (t.IsPrimitive || t.IsEnum || value is string) return;
            if (!t.IsValueType && !visited.Add(value)) return;
            count++;
            if (value is IEnumerable items) { int i = 0; foreach (var item in items) Walk(item, path + "[" + i++ + "]"); }
            foreach (var f in t.GetFields(Instance)) Walk(f.GetValue(value), path + "." + FieldName(f));
        }
        Walk(resolved, "ResolvedSpecs");
        Assert.True(count > 1000, "walked only " + count + " objects");

        // Equal input → equal (not just identical) output: what the incremental pipeline caches on.
        var again = SpecParser.Resolve(files.Select(f => new SpecFile(f.Path, f.Text)).ToImmutableArray(), CancellationToken.None);
        Assert.Equal(resolved, again);
        Assert.Equal(resolved.GetHashCode(), again.GetHashCode());
    }
}
