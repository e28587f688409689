using Xunit;

namespace ClipGen.Tests.Hardening;

/// <summary>Defects 19 and 20 of issue 12: thread counts are bounded, and error messages never echo control characters or megabytes.</summary>
public class ErrorPathTests
{
    [Fact]
    public void Control_characters_are_escaped_and_long_text_is_shortened()
    {
        Assert.Equal("a b c \\x1b[31m \\u202e", ErrorText.Message("a\nb\r\nc\t\u001b[31m \u202e"));
        Assert.Equal("a\\nb\\x00", ErrorText.Value("a\nb\0"));
        var huge = new string('x', 5_000_000) + "END";
        var m = ErrorText.Message("file '" + huge + "' is bad");
        Assert.True(m.Length <= ErrorText.MaxMessageChars + 64, $"{m.Length} chars");
        Assert.StartsWith("file 'xxx", m);
        Assert.EndsWith("xxxEND' is bad", m);
        Assert.Contains("characters omitted", m);
        Assert.True(ErrorText.Value(huge).Length <= ErrorText.MaxValueChars + 64);
        Assert.Equal("plain", ErrorText.Message("plain"));
        // A surrogate pair is never split.
        var emoji = string.Concat(Enumerable.Repeat("\U0001F600", 3000));
        var cut = ErrorText.Message(emoji);
        Assert.False(char.IsHighSurrogate(cut[cut.IndexOf(' ') - 1]));
    }

    [Fact]
    public void A_ClipGenException_message_is_one_safe_line()
    {
        var e = new ClipGenException("bad \u001b]0;title\u0007 name\nline two");
        Assert.Equal("bad \\x1b]0;title\\x07 name line two", e.Message);
    }

    [Fact]
    public void The_cli_escapes_and_shortens_what_it_echoes()
    {
        var name = "\u001b[31mevil\nerror: fake second line " + new string('n', 5_000_000);
        var (code, stdout, err) = TestUtil.Cli("preprocess", "--model", name, "--image", "x.png", "--output", "y.safetensors");
        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        var line = Assert.Single(err.TrimEnd('\n').Split('\n'));
        Assert.StartsWith("error: ", line);
        Assert.DoesNotContain('\u001b', line);
        Assert.Contains("\\x1b[31m", line);
        Assert.True(line.Length < 2 * ErrorText.MaxMessageChars, $"{line.Length} chars");

        (code, _, err) = TestUtil.Cli("no-such-\u001b[2Jcommand");
        Assert.Equal(2, code);
        Assert.DoesNotContain('\u001b', err);
    }

    [Theory]
    [InlineData("classify")]
    [InlineData("train")]
    public void Threads_have_an_upper_bound(string command)
    {
        string[] args = command == "classify"
            ? ["classify", "--model", "tiny-vit", "--weights", "w.safetensors", "--labels", "a,b", "--threads", "5000", "--image", "x.png"]
            : ["train", "--spec", "tiny-vit", "--train", "t.csv", "--output", "o", "--threads", "5000"];
        var (code, _, err) = TestUtil.Cli(args);
        Assert.Equal(2, code);
        Assert.Contains($"--threads must be a whole number from 1 to {Limits.MaxThreads}", err);
    }

    [Fact]
    public void Library_thread_options_have_the_same_bound()
    {
        var e = Assert.Throws<ClipGenException>(() => Limits.CheckThreads(5000, "TorchThreads"));
        Assert.Contains($"between 1 and {Limits.MaxThreads}", e.Message);
        Assert.DoesNotContain("--", e.Message);
        Assert.Throws<ClipGenException>(() => new global::ClipGen.Onnx.OnnxClipSessionOptions { ConcurrentRuns = 5000 }.Create());
        Assert.Throws<ClipGenException>(() => new global::ClipGen.Onnx.OnnxClipSessionOptions { IntraOpNumThreads = -1 }.Create());
    }
}
