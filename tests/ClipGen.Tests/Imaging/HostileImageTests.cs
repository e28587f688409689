using ClipGen.Cli;
using ClipGen.Imaging;
using Xunit;

namespace ClipGen.Tests.Imaging;

/// <summary>Broken and malicious inputs become a ClipGenException naming the file, and exit code 2 from the CLI.</summary>
public sealed class HostileImageTests : IDisposable
{
    readonly TestImages.TempDir _dir = new();
    readonly ImagePreprocessor _pre = new();

    public void Dispose() => _dir.Dispose();

    static byte[] Coffee => File.ReadAllBytes(Path.Combine(Fixtures.Root, "preprocess", "images", "coffee.png"));
    static byte[] Jpeg => File.ReadAllBytes(Path.Combine(Fixtures.Root, "preprocess", "images", "synth_q90_420.jpg"));

    public static TheoryData<string, string> Cases() => new()
    {
        { "truncated.png", "truncated" },
        { "truncated.jpg", "truncated" },
        { "empty.png", "empty" },
        { "text.png", "not a recognised image" },
        { "bomb.png", "above the limit" },
        { "ihdr-only.png", "truncated" },
    };

    string Make(string name) => name switch
    {
        "truncated.png" => _dir.File(name, Coffee[..(Coffee.Length / 2)]),
        "truncated.jpg" => _dir.File(name, Jpeg[..(Jpeg.Length / 2)]),
        "empty.png" => _dir.File(name, []),
        "text.png" => _dir.File(name, "this is not an image\n"u8.ToArray()),
        "bomb.png" => _dir.File(name, TestImages.PngHeaderOnly(100_000, 100_000)),
        "ihdr-only.png" => _dir.File(name, TestImages.PngHeaderOnly(64, 64)[..33]),
        _ => throw new ArgumentException(name),
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Throws_ClipGenException_with_file_and_reason(string name, string reason)
    {
        var path = Make(name);
        var e = Assert.Throws<ClipGenException>(() => _pre.Preprocess(path));
        Assert.Contains(path, e.Message);
        Assert.Contains(reason, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Cli_exits_2_with_one_line(string name, string reason)
    {
        var path = Make(name);
        var output = Path.Combine(_dir.Path, name + ".safetensors");
        var (code, stdout, stderr) = RunCli("preprocess", "--image", path, "--output", output);
        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("error: ", lines[0]);
        Assert.Contains(reason, lines[0]);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void Bomb_is_refused_from_the_header_before_decoding()
    {
        var path = Make("bomb.png");
        var e = Assert.Throws<ClipGenException>(() => _pre.Preprocess(path));
        Assert.Contains("100000×100000", e.Message);
        // A higher limit moves the failure to the (missing) pixel data, proving the limit is what refused it.
        var lenient = new ImagePreprocessor(new PreprocessOptions { MaxPixels = 20_000_000_000 });
        var e2 = Assert.Throws<ClipGenException>(() => lenient.Preprocess(path));
        Assert.DoesNotContain("above the limit", e2.Message);
    }

    [Fact]
    public void Jpeg_bomb_is_refused_from_skias_header_parse()
    {
        // The fixture JPEG with its SOF0 frame header patched to claim 65000×65000.
        var bytes = Jpeg;
        int sof = -1;
        for (int i = 2; i + 9 < bytes.Length; i++)
            if (bytes[i] == 0xFF && bytes[i + 1] is 0xC0 or 0xC2) { sof = i; break; }
        Assert.True(sof > 0);
        bytes[sof + 5] = 0xFD; bytes[sof + 6] = 0xE8; // height 65000
        bytes[sof + 7] = 0xFD; bytes[sof + 8] = 0xE8; // width 65000
        var path = _dir.File("bomb.jpg", bytes);
        var e = Assert.Throws<ClipGenException>(() => _pre.Preprocess(path));
        Assert.Contains("65000×65000", e.Message);
        Assert.Contains("above the limit", e.Message);
    }

    [Fact]
    public void Missing_file()
    {
        var path = Path.Combine(_dir.Path, "nope.png");
        var e = Assert.Throws<ClipGenException>(() => _pre.Preprocess(path));
        Assert.Contains("not found", e.Message);
    }

    [Fact]
    public void Stream_errors_use_the_given_name()
    {
        var e = Assert.Throws<ClipGenException>(() => _pre.Preprocess(new MemoryStream([1, 2, 3, 4]), "upload#7"));
        Assert.StartsWith("upload#7: ", e.Message);
    }

    [Fact]
    public void Batch_reports_the_failing_file()
    {
        var good = _dir.File("good.png", Coffee);
        var bad = Make("text.png");
        var e = Assert.Throws<ClipGenException>(() => _pre.PreprocessBatch([good, bad, good]));
        Assert.Contains(bad, e.Message);
    }

    [Fact]
    public void Raw_rgb_with_wrong_length_is_refused()
    {
        Assert.Throws<ClipGenException>(() => _pre.Preprocess(new byte[11], 2, 2));
    }

    [Fact]
    public void Cli_usage_errors_exit_2()
    {
        var (code, _, stderr) = RunCli("preprocess", "--image", "x.png", "--output", "y.safetensors", "--resize-mode", "zoom");
        Assert.Equal(2, code);
        Assert.Contains("--resize-mode", stderr);
        (code, _, stderr) = RunCli("preprocess", "--image", "x.png", "--output", "y.safetensors", "--bogus", "1");
        Assert.Equal(2, code);
        Assert.Contains("unknown option --bogus", stderr);
    }

    internal static (int Code, string Stdout, string Stderr) RunCli(params string[] argv)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = CliHost.Run(argv, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }
}
