using System.Collections.Immutable;
using System.Reflection;
using System.Runtime.Loader;
using ClipGen.Generators;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Text;

namespace ClipGen.Generators.Tests;

/// <summary>A spec file held in memory, as the compiler would hand it to the generator.</summary>
public sealed class InMemoryAdditionalText(string path, string text) : AdditionalText
{
    readonly SourceText _text = SourceText.From(text, System.Text.Encoding.UTF8);

    public override string Path { get; } = path;
    public override SourceText GetText(CancellationToken cancellationToken = default) => _text;
}

/// <summary>
/// What MSBuild gives the generator: <c>build_metadata.AdditionalFiles.ClipGenSpec = true</c> for every
/// <c>.yaml</c> additional file (<c>ClipGenSpecLibrary = true</c> for a <c>.library.yaml</c> one, as the package's built-ins) and
/// <c>build_property.RootNamespace</c> globally.
/// </summary>
public sealed class TestOptionsProvider(string rootNamespace) : AnalyzerConfigOptionsProvider
{
    sealed class Options(ImmutableDictionary<string, string> values) : AnalyzerConfigOptions
    {
        public override bool TryGetValue(string key, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out string? value) => values.TryGetValue(key, out value);
    }

    static readonly AnalyzerConfigOptions Empty = new Options(ImmutableDictionary<string, string>.Empty);
    static readonly AnalyzerConfigOptions Spec = new Options(ImmutableDictionary<string, string>.Empty.Add("build_metadata.AdditionalFiles.ClipGenSpec", "true"));
    static readonly AnalyzerConfigOptions Library = new Options(ImmutableDictionary<string, string>.Empty.Add("build_metadata.AdditionalFiles.ClipGenSpecLibrary", "true"));

    public override AnalyzerConfigOptions GlobalOptions { get; } =
        new Options(ImmutableDictionary<string, string>.Empty.Add("build_property.RootNamespace", rootNamespace));

    public override AnalyzerConfigOptions GetOptions(SyntaxTree tree) => Empty;

    public override AnalyzerConfigOptions GetOptions(AdditionalText textFile) =>
        textFile.Path.EndsWith(".library.yaml", StringComparison.OrdinalIgnoreCase) ? Library
        : textFile.Path.EndsWith(".yaml", StringComparison.OrdinalIgnoreCase) ? Spec : Empty;
}

/// <summary>Runs <see cref="ClipGenGenerator"/> in memory and compiles its output against the ClipGen runtime.</summary>
public static class GeneratorHarness
{
    /// <summary>The root namespace the test compilations use; the models land in <c>{RootNamespace}.Models</c>.</summary>
    public const string RootNamespace = "TestApp";
    public const string ModelsNamespace = RootNamespace + ".Models";

    public static readonly CSharpParseOptions ParseOptions = new(LanguageVersion.Latest);

    static readonly Lazy<ImmutableArray<MetadataReference>> s_references = new(() =>
    {
        // The framework's assemblies (from the trusted platform assemblies of this process) plus the runtime's.
        var frameworkDir = Path.GetDirectoryName(typeof(object).Assembly.Location)!;
        var tpa = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator);
        var paths = tpa.Where(p => string.Equals(Path.GetDirectoryName(p), frameworkDir, StringComparison.Ordinal)).ToList();
        paths.Add(typeof(ClipGen.Modeling.ClipModule).Assembly.Location);
        paths.Add(typeof(ClipGen.Onnx.OnnxGraphBuilder).Assembly.Location);
        paths.Add(typeof(TorchSharp.torch).Assembly.Location);
        paths.Add(typeof(ClipGen.Specs.ClipSpec).Assembly.Location);
        return paths.Distinct(StringComparer.Ordinal).OrderBy(p => p, StringComparer.Ordinal)
            .Select(p => (MetadataReference)MetadataReference.CreateFromFile(p)).ToImmutableArray();
    });

    public static ImmutableArray<MetadataReference> References => s_references.Value;

    /// <summary>A library compilation of the given C# sources, referencing the framework and the ClipGen runtime.</summary>
    public static CSharpCompilation CreateCompilation(params string[] sources) =>
        CSharpCompilation.Create("ClipGen.Generated.Test" + Guid.NewGuid().ToString("N"),
            sources.Select((s, i) => CSharpSyntaxTree.ParseText(s, ParseOptions, "Source" + i + ".cs")),
            References,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable,
                deterministic: true, concurrentBuild: false));

    /// <summary>A driver over the given spec files, with tracked incremental steps.</summary>
    public static GeneratorDriver CreateDriver(IEnumerable<AdditionalText> specs, string rootNamespace = RootNamespace) =>
        CSharpGeneratorDriver.Create(
            new[] { new ClipGenGenerator().AsSourceGenerator() },
            specs,
            ParseOptions,
            new TestOptionsProvider(rootNamespace),
            new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: true));

    /// <summary>Spec texts keyed by path → in-memory additional texts.</summary>
    public static AdditionalText[] Texts(params (string Path, string Yaml)[] specs) =>
        specs.Select(s => (AdditionalText)new InMemoryAdditionalText(s.Path, s.Yaml)).ToArray();

    /// <summary>Runs the generator once over the specs.</summary>
    public static GeneratorRun Run(params (string Path, string Yaml)[] specs)
    {
        var compilation = CreateCompilation();
        var driver = CreateDriver(Texts(specs)).RunGeneratorsAndUpdateCompilation(compilation, out var output, out _);
        return new GeneratorRun(driver, (CSharpCompilation)output);
    }

    /// <summary>The spec files of the repository (<c>specs/NAME.yaml</c>).</summary>
    public static (string Path, string Yaml) RepoSpec(string name)
    {
        var path = Path.Combine(RepoRoot, "specs", name + ".yaml");
        return (path, File.ReadAllText(path));
    }

    /// <summary>The folder holding ClipGen.sln, found by walking up from the test assembly.</summary>
    public static string RepoRoot { get; } = FindRepoRoot();

    static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "ClipGen.sln"))) return dir.FullName;
        throw new InvalidOperationException("ClipGen.sln not found above " + AppContext.BaseDirectory);
    }

    /// <summary>Compiles to memory and loads the assembly into a collectible load context (ClipGen and TorchSharp come from the default one).</summary>
    public static (Assembly Assembly, AssemblyLoadContext Context) EmitAndLoad(CSharpCompilation compilation)
    {
        using var ms = new MemoryStream();
        var result = compilation.Emit(ms);
        if (!result.Success)
            throw new InvalidOperationException("generated code does not compile:\n" + string.Join("\n", result.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error)));
        ms.Position = 0;
        var alc = new AssemblyLoadContext("clipgen-generated-" + Guid.NewGuid().ToString("N"), isCollectible: true);
        return (alc.LoadFromStream(ms), alc);
    }

    public static string Format(IEnumerable<Diagnostic> diagnostics) => string.Join("\n", diagnostics.Select(d => d.ToString()));
}

/// <summary>One generator run: the driver (for reruns) and the compilation with the generated code.</summary>
public sealed record GeneratorRun(GeneratorDriver Driver, CSharpCompilation Compilation)
{
    public GeneratorDriverRunResult Result => Driver.GetRunResult();

    public GeneratorRunResult Generator => Result.Results.Single();

    /// <summary>Generated files by hint name, in ordinal order.</summary>
    public IReadOnlyList<(string HintName, string Text)> Files =>
        Generator.GeneratedSources.Select(s => (s.HintName, s.SourceText.ToString())).OrderBy(f => f.HintName, StringComparer.Ordinal).ToList();

    /// <summary>Diagnostics the generator reported.</summary>
    public ImmutableArray<Diagnostic> Diagnostics => Generator.Diagnostics;
}
