using ClipGen.Generators.Model;
using Microsoft.CodeAnalysis;
using System.Collections.Immutable;
using Microsoft.CodeAnalysis.CSharp;
using Xunit;
using Steps = ClipGen.Generators.ClipGenGenerator.Steps;

namespace ClipGen.Generators.Tests;

/// <summary>Incremental caching per tracked step (<see cref="ClipGenGenerator.Steps"/>): what an edit re-runs and re-emits.</summary>
public class IncrementalTests
{
    const string A = "/specs/a.yaml";
    const string B = "/specs/b.yaml";

    static readonly string[] AllSteps = { Steps.SpecFiles, Steps.Resolve, Steps.Models, Steps.Registry, Steps.Diagnostics };

    static (GeneratorDriver Driver, CSharpCompilation Compilation, AdditionalText[] Texts) FirstRun(params (string Path, string Yaml)[] specs)
    {
        var compilation = GeneratorHarness.CreateCompilation();
        var texts = GeneratorHarness.Texts(specs);
        var driver = GeneratorHarness.CreateDriver(texts).RunGenerators(compilation);
        Assert.Empty(driver.GetRunResult().Diagnostics);
        return (driver, compilation, texts);
    }

    static IReadOnlyList<IncrementalStepRunReason> Reasons(GeneratorRunResult result, string step) =>
        result.TrackedSteps[step].SelectMany(s => s.Outputs).Select(o => o.Reason).ToList();

    static string Describe(GeneratorRunResult result) =>
        string.Join("\n", AllSteps.Where(result.TrackedSteps.ContainsKey).Select(s => s + ": " + string.Join(", ", Reasons(result, s))));

    static bool IsReused(IncrementalStepRunReason r) => r is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged;

    /// <summary>The class name of each output of the Models step, with its reason.</summary>
    static IReadOnlyList<(string Class, IncrementalStepRunReason Reason)> ModelOutputs(GeneratorRunResult result) =>
        result.TrackedSteps[Steps.Models].SelectMany(s => s.Outputs)
            .Select(o => (((ValueTuple<ModelToEmit, string>)o.Value).Item1.Spec.ClassName, o.Reason)).ToList();

    [Fact]
    public void Rerun_without_changes_is_fully_cached()
    {
        var (driver, compilation, _) = FirstRun((A, TinySpecs.Vit), (B, TinySpecs.ResNet));
        var result = driver.RunGenerators(compilation).GetRunResult().Results.Single();
        foreach (var step in AllSteps)
        {
            Assert.True(result.TrackedSteps.ContainsKey(step), "missing tracked step " + step);
            Assert.All(Reasons(result, step), r => Assert.True(r == IncrementalStepRunReason.Cached, step + ": " + r + "\n" + Describe(result)));
        }
        Assert.All(result.TrackedOutputSteps.SelectMany(s => s.Value).SelectMany(s => s.Outputs),
            o => Assert.True(IsReused(o.Reason), "output step re-ran: " + o.Reason));
    }

    [Theory]
    [InlineData("comment")]
    [InlineData("lines moved")]
    public void Edit_that_changes_no_value_re_emits_nothing(string kind)
    {
        var (driver, compilation, texts) = FirstRun((A, TinySpecs.Vit), (B, TinySpecs.ResNet));
        var edited = kind == "comment"
            ? TinySpecs.Vit.ReplaceLine("  width: 32", "  width: 32   # four heads of 8? no: two of 16")
            : "# A comment line at the top moves every line of the file down.\n\n" + TinySpecs.Vit;
        driver = driver.ReplaceAdditionalText(texts[0], new InMemoryAdditionalText(A, edited));
        var result = driver.RunGenerators(compilation).GetRunResult().Results.Single();

        // The file's text changed, so its SpecFiles entry is Modified and Resolve re-runs...
        Assert.Contains(IncrementalStepRunReason.Modified, Reasons(result, Steps.SpecFiles));
        // ...but the resolved models are equal, so nothing downstream is emitted again.
        Assert.All(Reasons(result, Steps.Resolve), r => Assert.True(r == IncrementalStepRunReason.Unchanged, "Resolve: " + r + "\n" + Describe(result)));
        Assert.All(ModelOutputs(result), o => Assert.True(IsReused(o.Reason), o.Class + ": " + o.Reason + "\n" + Describe(result)));
        Assert.Equal(2, ModelOutputs(result).Count);
        Assert.All(Reasons(result, Steps.Registry), r => Assert.True(IsReused(r), "Registry: " + r));
        Assert.All(Reasons(result, Steps.Diagnostics), r => Assert.True(IsReused(r), "Diagnostics: " + r));
    }

    [Fact]
    public void Moving_lines_of_a_spec_with_an_error_re_emits_no_model()
    {
        // With a diagnostic, a moved line changes the diagnostics (their line), but the models stay cached.
        var bad = TinySpecs.ResNet.ReplaceLine("  width: 8", "  width: eight");
        var (driver, compilation, texts) = FirstRunAllowingDiagnostics((A, TinySpecs.Vit), (B, bad));
        driver = driver.ReplaceAdditionalText(texts[1], new InMemoryAdditionalText(B, "# moved\n" + bad));
        var run = driver.RunGenerators(compilation).GetRunResult();
        var result = run.Results.Single();
        Assert.Contains(IncrementalStepRunReason.Modified, Reasons(result, Steps.Diagnostics));
        Assert.Equal(10, run.Diagnostics.Single().Location.GetLineSpan().StartLinePosition.Line + 1);
        Assert.All(ModelOutputs(result), o => Assert.True(IsReused(o.Reason), o.Class + ": " + o.Reason + "\n" + Describe(result)));
    }

    static (GeneratorDriver, CSharpCompilation, AdditionalText[]) FirstRunAllowingDiagnostics(params (string Path, string Yaml)[] specs)
    {
        var compilation = GeneratorHarness.CreateCompilation();
        var texts = GeneratorHarness.Texts(specs);
        return (GeneratorHarness.CreateDriver(texts).RunGenerators(compilation), compilation, texts);
    }

    [Fact]
    public void Value_edit_re_emits_only_that_model()
    {
        var (driver, compilation, texts) = FirstRun((A, TinySpecs.Vit), (B, TinySpecs.ResNet));
        var edited = TinySpecs.ResNet.ReplaceLine("  layers: 1", "  layers: 2"); // text tower depth of TinyB
        driver = driver.ReplaceAdditionalText(texts[1], new InMemoryAdditionalText(B, edited));
        var run = driver.RunGenerators(compilation).GetRunResult();
        var result = run.Results.Single();

        Assert.Contains(IncrementalStepRunReason.Modified, Reasons(result, Steps.Resolve));
        var models = ModelOutputs(result);
        Assert.Equal(2, models.Count);
        Assert.Contains(models, m => m.Class == "TinyA" && IsReused(m.Reason));
        Assert.Contains(("TinyB", IncrementalStepRunReason.Modified), models);
        // The registry lists the same classes: not re-emitted.
        Assert.All(Reasons(result, Steps.Registry), r => Assert.True(IsReused(r), "Registry: " + r));
        Assert.Contains("public const int TextLayers = 2;", run.Results[0].GeneratedSources.Single(s => s.HintName == "TinyB.Model.g.cs").SourceText.ToString());
    }

    [Fact]
    public void Adding_a_spec_keeps_the_existing_model()
    {
        var (driver, compilation, _) = FirstRun((A, TinySpecs.Vit));
        driver = driver.AddAdditionalTexts(GeneratorHarness.Texts((B, TinySpecs.ResNet)).ToImmutableArray());
        var result = driver.RunGenerators(compilation).GetRunResult().Results.Single();
        var models = ModelOutputs(result);
        Assert.Contains(models, m => m.Class == "TinyA" && IsReused(m.Reason));
        Assert.Contains(models, m => m.Class == "TinyB" && m.Reason == IncrementalStepRunReason.New);
        Assert.Contains(IncrementalStepRunReason.Modified, Reasons(result, Steps.Registry));
    }

    [Fact]
    public void Changing_the_root_namespace_re_emits_every_model()
    {
        var texts = GeneratorHarness.Texts((A, TinySpecs.Vit), (B, TinySpecs.ResNet));
        var compilation = GeneratorHarness.CreateCompilation();
        var driver = GeneratorHarness.CreateDriver(texts).RunGenerators(compilation);
        driver = driver.WithUpdatedAnalyzerConfigOptions(new TestOptionsProvider("Other"));
        var run = driver.RunGenerators(compilation).GetRunResult();
        Assert.All(ModelOutputs(run.Results[0]), o => Assert.Equal(IncrementalStepRunReason.Modified, o.Reason));
        Assert.All(run.GeneratedTrees, t => Assert.Contains("namespace Other.Models", t.ToString()));
    }
}
