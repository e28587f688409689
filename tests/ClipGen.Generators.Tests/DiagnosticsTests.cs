using System.Collections.Immutable;
using ClipGen.Generators.Model;
using ClipGen.Specs;
using Microsoft.CodeAnalysis;
using Xunit;

namespace ClipGen.Generators.Tests;

/// <summary>Every CLIPGEN diagnostic: exact id, file, line and column (1-based, as the user sees the YAML), and a message that says how to fix it.</summary>
public class DiagnosticsTests
{
    const string A = "/specs/a.yaml";
    const string B = "/specs/b.yaml";

    static ImmutableArray<Diagnostic> Diagnose(params (string Path, string Yaml)[] specs) => GeneratorHarness.Run(specs).Diagnostics;

    /// <summary>Asserts that exactly the expected diagnostics were reported (id, file, 1-based line and column), in order; returns them.</summary>
    static IReadOnlyList<Diagnostic> AssertDiagnostics(ImmutableArray<Diagnostic> actual, params (string Id, string File, int Line, int Column)[] expected)
    {
        var got = actual.Select(d =>
        {
            var span = d.Location.GetLineSpan();
            return (d.Id, span.Path, Line: span.StartLinePosition.Line + 1, Column: span.StartLinePosition.Character + 1);
        }).ToList();
        Assert.True(expected.SequenceEqual(got),
            "expected:\n  " + string.Join("\n  ", expected) + "\nactual:\n  " + string.Join("\n  ", got) + "\n" + GeneratorHarness.Format(actual));
        Assert.All(actual, d => Assert.Equal(DiagnosticSeverity.Error, d.Severity));
        Assert.All(actual, d => Assert.True(d.Location.IsInSource == false && d.Location.Kind == LocationKind.ExternalFile, "diagnostics sit in the YAML file"));
        return actual;
    }

    static void AssertNoModels(params (string Path, string Yaml)[] specs) =>
        Assert.DoesNotContain(GeneratorHarness.Run(specs).Files, f => f.HintName.EndsWith(".Model.g.cs", StringComparison.Ordinal) && f.HintName.StartsWith("TinyA", StringComparison.Ordinal));

    [Fact]
    public void Valid_specs_have_no_diagnostics()
    {
        var run = GeneratorHarness.Run((A, TinySpecs.Vit), (B, TinySpecs.ResNet));
        Assert.Empty(run.Diagnostics);
        Assert.Contains(run.Files, f => f.HintName == "TinyA.Model.g.cs");
        Assert.Contains(run.Files, f => f.HintName == "TinyB.Model.g.cs");
    }

    [Fact]
    public void CLIPGEN001_yaml_syntax_error()
    {
        var yaml = TinySpecs.Vit.ReplaceLine("  width: 32", "  width: 32: 4");
        var d = AssertDiagnostics(Diagnose((A, yaml)), ("CLIPGEN001", A, 10, 12))[0];
        Assert.Contains("YAML syntax error", d.GetMessage());
        Assert.Contains("fix", d.GetMessage());
        AssertNoModels((A, yaml));
    }

    [Fact]
    public void CLIPGEN001_second_document_in_one_file()
    {
        var yaml = TinySpecs.Vit + "---\nname: other\n";
        var d = AssertDiagnostics(Diagnose((A, yaml)), ("CLIPGEN001", A, 26, 1))[0];
        Assert.Contains("split the others into their own files", d.GetMessage());
    }

    [Fact]
    public void CLIPGEN002_unknown_key_suggests_the_known_one()
    {
        var yaml = TinySpecs.Vit.ReplaceLine("embed_dim: 16", "embed_dimm: 16");
        // The typo also leaves embed_dim missing: reported at the spec's root mapping.
        var d = AssertDiagnostics(Diagnose((A, yaml)), ("CLIPGEN003", A, 1, 1), ("CLIPGEN002", A, 3, 1))[1];
        Assert.Contains("unknown key 'embed_dimm'", d.GetMessage());
        Assert.Contains("did you mean 'embed_dim'?", d.GetMessage());
    }

    [Fact]
    public void CLIPGEN002_unknown_key_in_a_section()
    {
        var yaml = TinySpecs.Vit.ReplaceLine("  head_width: 16", "  head_width: 16\n  mlp_ration: 4");
        var d = AssertDiagnostics(Diagnose((A, yaml)), ("CLIPGEN002", A, 12, 3))[0];
        Assert.Contains("did you mean 'mlp_ratio'?", d.GetMessage());
    }

    [Fact]
    public void CLIPGEN003_missing_field()
    {
        var yaml = TinySpecs.Vit.RemoveLine("  layers: 1");
        // At the 'text' mapping (its first key, line 13 column 3).
        var d = AssertDiagnostics(Diagnose((A, yaml)), ("CLIPGEN003", A, 13, 3))[0];
        Assert.Contains("missing required field 'layers'", d.GetMessage());
        Assert.Contains("add", d.GetMessage());
    }

    [Fact]
    public void CLIPGEN003_missing_section()
    {
        var yaml = TinySpecs.Vit.RemoveLine("tokenizer:").RemoveLine("  kind: clip_bpe");
        var d = AssertDiagnostics(Diagnose((A, yaml)), ("CLIPGEN003", A, 1, 1))[0];
        Assert.Contains("missing required section 'tokenizer'", d.GetMessage());
    }

    [Fact]
    public void CLIPGEN004_ill_typed_field()
    {
        var yaml = TinySpecs.Vit.ReplaceLine("  width: 32", "  width: wide");
        var d = AssertDiagnostics(Diagnose((A, yaml)), ("CLIPGEN004", A, 10, 10))[0];
        Assert.Contains("'width' must be a whole number, not 'wide'", d.GetMessage());
    }

    [Fact]
    public void CLIPGEN004_quoted_number_is_a_string()
    {
        var yaml = TinySpecs.Vit.ReplaceLine("embed_dim: 16", "embed_dim: \"16\"");
        AssertDiagnostics(Diagnose((A, yaml)), ("CLIPGEN004", A, 3, 12));
    }

    [Fact]
    public void CLIPGEN005_invalid_value_suggests_an_allowed_one()
    {
        var yaml = TinySpecs.Vit.ReplaceLine("activation: gelu", "activation: relu");
        var d = AssertDiagnostics(Diagnose((A, yaml)), ("CLIPGEN005", A, 4, 13))[0];
        Assert.Contains("must be one of quick_gelu, gelu, gelu_tanh, not 'relu'", d.GetMessage());
        Assert.Contains("did you mean 'gelu'?", d.GetMessage());
    }

    [Fact]
    public void CLIPGEN005_value_below_minimum()
    {
        var yaml = TinySpecs.Vit.ReplaceLine("  layers: 1", "  layers: 0");
        var d = AssertDiagnostics(Diagnose((A, yaml)), ("CLIPGEN005", A, 17, 11))[0];
        Assert.Contains("must be at least 1", d.GetMessage());
    }

    [Fact]
    public void CLIPGEN005_pretrained_entry_with_both_url_and_repo()
    {
        var yaml = TinySpecs.Vit + "pretrained:\n  hf:\n    url: https://example.com/a.bin\n    repo: a/b\n    file: a.bin\n"; // lines 25-29
        var d = AssertDiagnostics(Diagnose((A, yaml)), ("CLIPGEN005", A, 28, 11))[0];
        Assert.Contains("pretrained 'hf' has both 'url' and 'repo'", d.GetMessage());
        AssertNoModels((A, yaml));
    }

    [Fact]
    public void CLIPGEN003_pretrained_hub_entry_without_file()
    {
        var yaml = TinySpecs.Vit + "pretrained:\n  hf:\n    repo: a/b\n"; // repo on line 27
        var d = AssertDiagnostics(Diagnose((A, yaml)), ("CLIPGEN003", A, 27, 11))[0];
        Assert.Contains("missing required field 'file' in pretrained 'hf'", d.GetMessage());
    }

    [Fact]
    public void CLIPGEN002_misspelt_pretrained_key_suggests_revision()
    {
        var yaml = TinySpecs.Vit + "pretrained:\n  hf:\n    repo: a/b\n    file: a.bin\n    revison: main\n"; // revison on line 29
        var d = AssertDiagnostics(Diagnose((A, yaml)), ("CLIPGEN002", A, 29, 5))[0];
        Assert.Contains("did you mean 'revision'?", d.GetMessage());
    }

    [Fact]
    public void CLIPGEN006_width_not_divisible_by_head_width()
    {
        var yaml = TinySpecs.Vit.ReplaceLine("  head_width: 16", "  head_width: 12");
        var d = AssertDiagnostics(Diagnose((A, yaml)), ("CLIPGEN006", A, 11, 15))[0];
        Assert.Contains("not divisible by head_width 12", d.GetMessage());
        Assert.Contains("must be whole", d.GetMessage());
    }

    [Fact]
    public void CLIPGEN006_text_width_not_divisible_by_heads()
    {
        var yaml = TinySpecs.Vit.ReplaceLine("  heads: 2", "  heads: 3");
        AssertDiagnostics(Diagnose((A, yaml)), ("CLIPGEN006", A, 16, 10));
    }

    [Fact]
    public void CLIPGEN007_patch_larger_than_the_image()
    {
        var yaml = TinySpecs.Vit.ReplaceLine("  patch_size: 8", "  patch_size: 64");
        var d = AssertDiagnostics(Diagnose((A, yaml)), ("CLIPGEN007", A, 8, 15))[0];
        Assert.Contains("patch_size 64 is larger than image_size 32", d.GetMessage());
    }

    [Fact]
    public void A_patch_that_does_not_divide_the_image_drops_the_remainder_like_open_clip()
    {
        // ViT-SO400M-14-SigLIP-384: 384 / 14 gives 27 whole patches a side; the last 6 pixels are never seen.
        var yaml = TinySpecs.Vit.ReplaceLine("  patch_size: 8", "  patch_size: 7");
        Assert.Empty(Diagnose((A, yaml)));
    }

    [Fact]
    public void CLIPGEN007_resnet_image_size_not_divisible_by_32()
    {
        var yaml = TinySpecs.ResNet.ReplaceLine("  image_size: 64", "  image_size: 60");
        var d = AssertDiagnostics(Diagnose((B, yaml)), ("CLIPGEN007", B, 7, 15))[0];
        Assert.Contains("divisible by 32", d.GetMessage());
    }

    [Fact]
    public void CLIPGEN008_resnet_layers_not_four_ints()
    {
        var yaml = TinySpecs.ResNet.ReplaceLine("  layers: [1, 1, 1, 1]", "  layers: [3, 4, 6]");
        // Only this diagnostic: a list of layers means a ResNet, so no cascade about a missing ViT patch_size.
        var d = AssertDiagnostics(Diagnose((B, yaml)), ("CLIPGEN008", B, 8, 11))[0];
        Assert.Contains("list of four ints", d.GetMessage());
        Assert.Contains("not a list of 3", d.GetMessage());
    }

    [Fact]
    public void CLIPGEN009_duplicate_name_across_files()
    {
        var b = TinySpecs.ResNet.ReplaceLine("name: tiny-b", "name: tiny-a");
        var d = AssertDiagnostics(Diagnose((A, TinySpecs.Vit), (B, b)), ("CLIPGEN009", B, 1, 7))[0];
        Assert.Contains("spec name 'tiny-a' is already declared at " + A + "(1,7)", d.GetMessage());
        Assert.Contains("rename one of them", d.GetMessage());
    }

    [Fact]
    public void CLIPGEN009_duplicate_alias_across_files()
    {
        var a = TinySpecs.Vit.ReplaceLine("class_name: TinyA", "class_name: TinyA\naliases: [tiny]");
        var b = TinySpecs.ResNet.ReplaceLine("class_name: TinyB", "class_name: TinyB\naliases: [tiny]");
        var d = AssertDiagnostics(Diagnose((A, a), (B, b)), ("CLIPGEN009", B, 3, 11))[0];
        Assert.Contains("alias 'tiny' is already used at " + A + "(3,11)", d.GetMessage());
    }

    [Fact]
    public void CLIPGEN009_duplicate_class_name_across_files()
    {
        // Two names, one C# class: the generator used to crash on the duplicate hint name (no output at all).
        var b = TinySpecs.ResNet.ReplaceLine("class_name: TinyB", "class_name: TinyA");
        var run = GeneratorHarness.Run((A, TinySpecs.Vit), (B, b));
        var d = AssertDiagnostics(run.Diagnostics, ("CLIPGEN009", B, 2, 13))[0];
        Assert.Contains("class name 'TinyA'", d.GetMessage());
        Assert.Contains("'class_name'", d.GetMessage());
        Assert.Contains(run.Files, f => f.HintName == "TinyA.Model.g.cs");
        Assert.Empty(run.Compilation.GetDiagnostics().Where(x => x.Severity == DiagnosticSeverity.Error));
    }

    [Fact]
    public void CLIPGEN010_extends_cycle()
    {
        const string a = "name: spec-a\nextends: spec-b\n";
        const string b = "name: spec-b\nextends: spec-a\n";
        var ds = AssertDiagnostics(Diagnose((A, a), (B, b)), ("CLIPGEN010", A, 2, 10), ("CLIPGEN010", B, 2, 10));
        Assert.Contains("spec-a -> spec-b -> spec-a", ds[0].GetMessage());
        Assert.Contains("break the chain", ds[0].GetMessage());
    }

    [Fact]
    public void CLIPGEN011_missing_base()
    {
        const string child = "name: child\nextends: tiny-aa\nactivation: quick_gelu\n";
        var d = AssertDiagnostics(Diagnose((A, TinySpecs.Vit), (B, child)), ("CLIPGEN011", B, 2, 10))[0];
        Assert.Contains("did you mean 'tiny-a'?", d.GetMessage());
        Assert.Contains("declare it or fix the name", d.GetMessage());
    }

    [Fact]
    public void Extends_of_a_known_base_resolves()
    {
        const string child = "name: child\nclass_name: Child\nextends: tiny-a\nactivation: quick_gelu\n";
        var run = GeneratorHarness.Run((A, TinySpecs.Vit), (B, child));
        Assert.Empty(run.Diagnostics);
        Assert.Contains(run.Files, f => f.HintName == "Child.Model.g.cs");
    }

    [Fact]
    public void A_library_spec_may_be_extended_and_emits_nothing()
    {
        // What the ClipGen package does for a consumer: the built-ins are AdditionalFiles with ClipGenSpecLibrary.
        const string child = "name: child\nclass_name: Child\nextends: tiny-a\nactivation: gelu\n";
        var run = GeneratorHarness.Run(("/lib/tiny-a.library.yaml", TinySpecs.Vit), (B, child));
        Assert.Empty(run.Diagnostics);
        Assert.Contains(run.Files, f => f.HintName == "Child.Model.g.cs");
        Assert.DoesNotContain(run.Files, f => f.HintName.StartsWith("TinyA.", StringComparison.Ordinal));
        Assert.Empty(run.Compilation.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error));
    }

    [Fact]
    public void Diagnostics_of_one_spec_do_not_stop_the_others()
    {
        var bad = TinySpecs.ResNet.ReplaceLine("  width: 8", "  width: eight");
        var run = GeneratorHarness.Run((A, TinySpecs.Vit), (B, bad));
        AssertDiagnostics(run.Diagnostics, ("CLIPGEN004", B, 9, 10));
        Assert.Contains(run.Files, f => f.HintName == "TinyA.Model.g.cs");
        Assert.DoesNotContain(run.Files, f => f.HintName.StartsWith("TinyB", StringComparison.Ordinal));
    }

    /// <summary>
    /// CLIPGEN099 cannot be reached from YAML text (every bad input has its own id), so this goes through the
    /// parser step directly (internal, no reflection) with a file whose text is missing, which throws inside it.
    /// </summary>
    [Fact]
    public void CLIPGEN099_internal_error_becomes_a_diagnostic()
    {
        var result = SpecParser.Resolve(ImmutableArray.Create(new SpecFile(A, null!)), CancellationToken.None);
        Assert.Empty(result.Models);
        var d = Assert.Single(result.Diagnostics);
        Assert.Equal(SpecDiagnosticIds.InternalError, d.Id);
        Assert.Equal(new SpecLocation(A, 1, 1), d.Location);
        Assert.Contains("please report it", d.Message);

        var roslyn = DiagnosticDescriptors.Create(d);
        Assert.Equal("CLIPGEN099", roslyn.Id);
        Assert.Equal(DiagnosticSeverity.Error, roslyn.Severity);
        Assert.Equal(0, roslyn.Location.GetLineSpan().StartLinePosition.Line);
    }

    [Fact]
    public void Every_id_has_a_descriptor_and_a_title()
    {
        var ids = typeof(SpecDiagnosticIds).GetFields().Where(f => f.IsLiteral).Select(f => (string)f.GetRawConstantValue()!).ToList();
        Assert.Equal(12, ids.Count);
        foreach (var id in ids)
        {
            var desc = DiagnosticDescriptors.Get(id);
            Assert.Equal(id, desc.Id);
            Assert.NotEqual("ClipGen spec error", desc.Title.ToString());
        }
    }
}
