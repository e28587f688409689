using System.CommandLine;
using ClipGen.Cli;
using Xunit;

namespace ClipGen.Tests.Cli;

/// <summary>
/// The command line as System.CommandLine parses it: flags take no value, typed options are checked before a command runs,
/// unknown options are usage errors (exit 2), and every command has a generated --help.
/// </summary>
public class CliParserTests
{
    static ParseResult Parse(params string[] argv) => CommandRegistry.Root().Parse(argv);

    [Fact]
    public void Resume_as_the_last_argument_is_a_flag()
    {
        var r = Parse("train", "--spec", "tiny-vit", "--train", "t.csv", "--output", "o", "--resume");
        Assert.Empty(r.Errors);
        Assert.Empty(r.UnmatchedTokens);
        Assert.True(r.GetValue<bool>("--resume"));

        // Through the entry point it gets past the parser: the error is about the missing data, not a missing value.
        var dir = TestUtil.TempDir();
        File.WriteAllText(Path.Combine(dir, "spec.yaml"), TrainCliTests.Spec);
        var (code, _, err) = TestUtil.Cli("train", "--spec", Path.Combine(dir, "spec.yaml"), "--train", Path.Combine(dir, "none.csv"), "--output", dir, "--threads", "1", "--resume");
        Assert.Equal(2, code);
        Assert.DoesNotContain("needs a value", err);
        Assert.Contains("does not exist", err);
    }

    [Fact]
    public void A_flag_followed_by_another_option_leaves_that_option_alone()
    {
        var r = Parse("train", "--spec", "tiny-vit", "--freeze-image-tower", "--train", "t.csv", "--output", "o");
        Assert.Empty(r.Errors);
        Assert.True(r.GetValue<bool>("--freeze-image-tower"));
        Assert.Equal("t.csv", r.GetValue<string>("--train"));
        Assert.Equal("o", r.GetValue<string>("--output"));
    }

    [Fact]
    public void A_flag_given_a_word_is_refused_and_true_or_false_is_taken()
    {
        // "1" is not swallowed: it is a stray argument, and the message names the flag that takes no value.
        var (code, _, err) = TestUtil.Cli("train", "--spec", "tiny-vit", "--train", "t.csv", "--output", "o", "--freeze-image-tower", "1");
        Assert.Equal(2, code);
        Assert.Contains("--freeze-image-tower is a flag and takes no value, not '1'", err);

        // System.CommandLine's convention for booleans: an explicit true or false is the flag's value.
        Assert.False(Parse("train", "--spec", "s", "--train", "t", "--output", "o", "--freeze-image-tower", "false").GetValue<bool>("--freeze-image-tower"));
        Assert.True(Parse("train", "--spec", "s", "--train", "t", "--output", "o", "--freeze-image-tower=true").GetValue<bool>("--freeze-image-tower"));
        Assert.False(Parse("train", "--spec", "s", "--train", "t", "--output", "o").GetValue<bool>("--freeze-image-tower"));
    }

    [Fact]
    public void Unknown_options_are_usage_errors_with_a_suggestion()
    {
        var (code, stdout, err) = TestUtil.Cli("train", "--spec", "tiny-vit", "--train", "t.csv", "--output", "o", "--epoch", "3");
        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        Assert.Contains("error: unknown option --epoch (did you mean --epochs?)", err);
        Assert.Contains("Run 'clipgen train --help' for its options.", err);

        (code, _, err) = TestUtil.Cli("models", "--bogus");
        Assert.Equal(2, code);
        Assert.Contains("unknown option --bogus", err);

        (code, _, err) = TestUtil.Cli("tokenize", "--frobnicate", "1", "cat");
        Assert.Equal(2, code);
        Assert.Contains("unknown option --frobnicate", err);

        (code, _, err) = TestUtil.Cli("modles");
        Assert.Equal(2, code);
        Assert.Contains("unknown command 'modles' (did you mean 'models'?)", err);
    }

    [Fact]
    public void Typed_values_are_checked_by_the_parser()
    {
        var (code, _, err) = TestUtil.Cli("train", "--spec", "tiny-vit", "--train", "t.csv", "--output", "o", "--epochs", "ten");
        Assert.Equal(2, code);
        Assert.Contains("--epochs takes a whole number, not 'ten'", err);

        (code, _, err) = TestUtil.Cli("train", "--spec", "tiny-vit", "--train", "t.csv", "--output", "o", "--batch-size", "0");
        Assert.Equal(2, code);
        Assert.Contains("--batch-size must be positive, not 0", err);

        (code, _, err) = TestUtil.Cli("train", "--spec", "tiny-vit", "--train", "t.csv", "--output", "o", "--epochs");
        Assert.Equal(2, code);
        Assert.Contains("--epochs", err);

        (code, _, err) = TestUtil.Cli("export-onnx", "--model", "tiny-vit", "--weights", "w", "--output", "o", "--kind", "both");
        Assert.Equal(2, code);
        Assert.Contains("--kind takes image, text, full or all, not 'both'", err);
    }

    [Fact]
    public void A_repeated_option_takes_its_last_value()
    {
        var r = Parse("train", "--spec", "a", "--spec", "b", "--train", "t", "--output", "o", "--epochs", "2", "--epochs", "3");
        Assert.Empty(r.Errors);
        Assert.Equal("b", r.GetValue<string>("--spec"));
        Assert.Equal(3, r.GetValue<int>("--epochs"));
    }

    [Fact]
    public void Values_may_follow_an_equals_sign()
    {
        var r = Parse("train", "--spec=tiny-vit", "--train=t.csv", "--output=o", "--lr=1e-3", "--batch-size=128");
        Assert.Empty(r.Errors);
        Assert.Equal(1e-3, r.GetValue<double>("--lr"));
        Assert.Equal(128, r.GetValue<int>("--batch-size"));
    }

    [Fact]
    public void Every_command_has_a_generated_help_that_lists_its_options()
    {
        var root = CommandRegistry.Root();
        var commands = root.Subcommands.SelectMany(c => c.Subcommands.Count > 0 ? c.Subcommands.Select(s => new[] { c.Name, s.Name }) : [[c.Name]]).ToList();
        Assert.Contains(commands, c => c.SequenceEqual(["spec", "infer"]));
        foreach (var path in commands)
        {
            var (code, stdout, err) = TestUtil.Cli([.. path, "--help"]);
            Assert.True(code == 0, $"{string.Join(' ', path)} --help: {err}");
            Assert.Contains($"clipgen {string.Join(' ', path)}", stdout);
            var command = path.Length == 1 ? root.Subcommands.Single(c => c.Name == path[0]) : root.Subcommands.Single(c => c.Name == path[0]).Subcommands.Single(s => s.Name == path[1]);
            foreach (var option in command.Options) Assert.Contains(option.Name, stdout);
        }
        var train = TestUtil.Cli("train", "--help").Out;
        foreach (var name in new[] { "--spec", "--train", "--output", "--resume", "--force", "--freeze-image-tower", "--epochs", "--threads" })
            Assert.Contains(name, train);

        // 'clipgen help train' is 'clipgen train --help'; no arguments lists the commands and is a usage error.
        Assert.Equal(train, TestUtil.Cli("help", "train").Out);
        var none = TestUtil.Cli();
        Assert.Equal(2, none.Code);
        Assert.Contains("classify", none.Out);
    }

    [Fact]
    public void A_missing_required_option_is_named()
    {
        var (code, _, err) = TestUtil.Cli("convert", "--weights", "w");
        Assert.Equal(2, code);
        Assert.Contains("missing required option --to", err);
        Assert.Contains("missing required option --output", err);
    }
}
