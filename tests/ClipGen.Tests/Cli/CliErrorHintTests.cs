using System.Text.RegularExpressions;
using Xunit;

namespace ClipGen.Tests.Cli;

/// <summary>The library's errors speak of its own settings; the CLI names its flags (CliErrorHints).</summary>
public class CliErrorHintTests
{
    [Fact]
    public void An_unknown_model_points_at_clipgen_models_in_the_cli_only()
    {
        var e = Assert.Throws<ClipGenException>(() => Modeling.ModelRegistry.Get("ViT-B-33"));
        Assert.Equal(ClipGenSetting.Model, e.Setting);
        Assert.DoesNotContain("clipgen", e.Message);

        var (code, _, err) = TestUtil.Cli("train", "--spec", "ViT-B-33", "--train", "t.csv", "--output", TestUtil.TempDir());
        Assert.Equal(2, code);
        Assert.Contains("unknown model 'ViT-B-33'", err);
        Assert.Contains("'clipgen models' lists the compiled-in models", err);
    }

    [Fact]
    public void A_missing_csv_column_names_the_cli_options()
    {
        var dir = TestUtil.TempDir();
        var csv = Path.Combine(dir, "t.csv");
        File.WriteAllText(csv, "image,text\na.png,b\n");
        File.WriteAllText(Path.Combine(dir, "spec.yaml"), TrainCliTests.Spec); // a bytes tokenizer: no vocabulary file needed
        var (code, _, err) = TestUtil.Cli("train", "--spec", Path.Combine(dir, "spec.yaml"), "--train", csv, "--output", Path.Combine(dir, "run"), "--threads", "1");
        Assert.Equal(2, code);
        Assert.Contains("no 'filepath' column", err);
        Assert.Contains("--image-column / --caption-column", err);
    }

    /// <summary>No exception message in the library's source names a command-line flag or a clipgen command.</summary>
    [Fact]
    public void Library_messages_name_no_cli_flags()
    {
        var offending = new List<string>();
        foreach (var project in new[] { "src/ClipGen", "src/ClipGen.Spec" })
            foreach (var file in Directory.EnumerateFiles(Path.Combine(Fixtures.RepoRoot, project), "*.cs", SearchOption.AllDirectories))
            {
                var lines = File.ReadAllLines(file);
                for (int i = 0; i < lines.Length; i++)
                {
                    var line = lines[i].TrimStart();
                    if (line.StartsWith("//", StringComparison.Ordinal)) continue;
                    foreach (Match m in Regex.Matches(line, "\"(?:[^\"\\\\]|\\\\.)*\""))
                        if (Regex.IsMatch(m.Value, @"(^|[\s(])--[a-z]") || m.Value.Contains("clipgen ", StringComparison.Ordinal))
                            offending.Add($"{Path.GetRelativePath(Fixtures.RepoRoot, file)}:{i + 1}: {m.Value}");
                }
            }
        Assert.True(offending.Count == 0, string.Join("\n", offending));
    }
}
