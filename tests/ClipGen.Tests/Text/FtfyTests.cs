using System.Text.Json;
using ClipGen.Text;
using Xunit;

namespace ClipGen.Tests.Text;

/// <summary><see cref="FtfyLite"/> (ftfy.fix_text, with <see cref="FtfyEncoding"/>'s mojibake repair) against ftfy 6.3.1's own output.</summary>
public sealed class FtfyTests
{
    internal static List<(string Text, string Fixed)> Load(string path)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        return doc.RootElement.GetProperty("cases").EnumerateArray()
            .Select(c => (c.GetProperty("text").GetString()!, c.GetProperty("fixed").GetString()!)).ToList();
    }

    [Fact]
    public void Fix_text_matches_ftfy_on_generated_mojibake()
    {
        var cases = Load(Path.Combine(Fixtures.RepoRoot, "tests", "ClipGen.Tests", "Text", "Data", "ftfy_reference.json"));
        Assert.True(cases.Count >= 400);
        Assert.True(cases.Count(c => c.Text != c.Fixed) >= 300, "the file should mostly hold text that ftfy changes");
        var bad = cases.Where(c => FtfyLite.Fix(c.Text) != c.Fixed).ToList();
        Assert.True(bad.Count == 0, $"{bad.Count} of {cases.Count} differ; first: {(bad.Count > 0 ? $"{JsonSerializer.Serialize(bad[0].Text)} → expected {JsonSerializer.Serialize(bad[0].Fixed)}, got {JsonSerializer.Serialize(FtfyLite.Fix(bad[0].Text))}" : "")}");
    }

    [Theory]
    [InlineData("sÃ³", "só")]                                   // ftfy's documented examples
    [InlineData("voilÃ le travail", "voilà le travail")]       // byte A0 restored
    [InlineData("âœ” No problems", "✔ No problems")]
    [InlineData("&macr;\\_(ã\u0083\u0084)_/&macr;", "¯\\_(ツ)_/¯")]
    [InlineData("mojibake: Ã©tÃ©", "mojibake: été")]             // the SigLIP fixture's case
    [InlineData("cafÃ©", "café")]
    [InlineData("café", "café")]                                // already right: left alone
    [InlineData("ÃƒÂ©", "é")]                                   // twice mis-decoded
    public void Documented_examples(string input, string expected)
    {
        Assert.Equal(expected, FtfyLite.Fix(input));
    }
}
