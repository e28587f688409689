using System.Text;
using ClipGen.Specs;
using Xunit;

namespace ClipGen.Tests.Hardening;

/// <summary>Defects 1 and 2 of issue 12: a YAML alias bomb and deep nesting are refused at their line, within bounded memory.</summary>
public class SpecParserLimitTests
{
    static readonly string ValidSpec = HostileCorpus.ValidSpec(Fixtures.RepoRoot);

    static string AliasBomb(int levels = 10) => HostileCorpus.AliasBomb(ValidSpec, levels);

    static string DeepNesting(int depth) => HostileCorpus.DeepNesting(ValidSpec, depth);

    static SpecException Refused(string text, long maxAllocatedBytes = 256L << 20)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<SpecException>(() => SpecResolver.ResolveSingle("/specs/hostile.yaml", text));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < maxAllocatedBytes, $"allocated {allocated:N0} bytes");
        Assert.DoesNotContain('\n', e.Message);
        return e;
    }

    [Fact]
    public void An_alias_bomb_is_refused_at_its_line()
    {
        var e = Refused(AliasBomb());
        var d = e.Diagnostics[0];
        Assert.Equal(SpecDiagnosticIds.YamlSyntax, d.Id);
        Assert.Contains("expands to more than", d.Message);
        Assert.InRange(d.Location.Line, 2, 10);
    }

    [Fact]
    public void A_wide_alias_bomb_in_one_flow_list_is_refused()
    {
        // Variant: fewer levels, more fan-out, written as nested mappings.
        var e = Refused(HostileCorpus.MappingAliasBomb(ValidSpec));
        Assert.Contains("expands to more than", e.Diagnostics[0].Message);
    }

    [Theory]
    [InlineData(20_000)]
    [InlineData(65)]
    public void Deep_nesting_is_refused_without_a_stack_overflow(int depth)
    {
        var e = Refused(DeepNesting(depth));
        Assert.Equal(SpecDiagnosticIds.YamlSyntax, e.Diagnostics[0].Id);
        Assert.Contains("nest more than 64 levels", e.Diagnostics[0].Message);
        Assert.Equal(1, e.Diagnostics[0].Location.Line);
    }

    [Fact]
    public void Deep_block_mappings_are_refused_too()
    {
        var e = Refused(HostileCorpus.DeepBlockMappings(200));
        Assert.Contains("nest more than", e.Diagnostics[0].Message);
    }

    [Fact]
    public void An_alias_that_nests_too_deeply_is_refused()
    {
        var deep = new string('[', 40) + new string(']', 40);
        var e = Refused($"a: &a {deep}\nb: {new string('[', 30)}*a{new string(']', 30)}\n" + ValidSpec);
        Assert.Contains("alias *a nests", e.Diagnostics[0].Message);
        Assert.Equal(2, e.Diagnostics[0].Location.Line);
    }

    [Fact]
    public void Unbalanced_brackets_are_a_syntax_error_not_a_crash()
    {
        var e = Refused("b: " + new string('[', 30) + "x" + new string(']', 31) + "\n" + ValidSpec);
        Assert.Equal(SpecDiagnosticIds.YamlSyntax, e.Diagnostics[0].Id);
    }

    [Fact]
    public void Modest_aliases_and_nesting_still_parse()
    {
        var text = ValidSpec.Replace("mean: [0.5, 0.5, 0.5]", "mean: &half [0.5, 0.5, 0.5]").Replace("std: [0.25, 0.25, 0.25]", "std: *half");
        var spec = SpecResolver.ResolveSingle("/specs/aliases.yaml", text);
        Assert.Equal(0.5, spec.Preprocess.Std[1]);
        var doc = SpecDocument.Parse("/specs/nested.yaml", "x: " + new string('[', 60) + new string(']', 60) + "\n" + ValidSpec);
        Assert.DoesNotContain(doc.Diagnostics, d => d.Id == SpecDiagnosticIds.YamlSyntax);
    }

    [Fact]
    public void Limits_can_be_raised_by_the_caller()
    {
        var doc = SpecDocument.Parse("/specs/deep.yaml", DeepNesting(100), new SpecParseLimits { MaxDepth = 200 });
        Assert.DoesNotContain(doc.Diagnostics, d => d.Message.Contains("nest more than"));
        var bomb = SpecDocument.Parse("/specs/bomb.yaml", AliasBomb(levels: 5), new SpecParseLimits { MinNodes = 100 });
        Assert.Contains(bomb.Diagnostics, d => d.Message.Contains("expands to more than"));
    }
}
