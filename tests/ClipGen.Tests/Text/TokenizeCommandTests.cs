using System.Text.Json;
using ClipGen.Cli;
using Xunit;

namespace ClipGen.Tests.Text;

public sealed class TokenizeCommandTests
{
    static (int Code, string Out, string Err) Run(params string[] argv)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = CliHost.Run(argv, o, e);
        return (code, o.ToString(), e.ToString());
    }

    [Fact]
    public void Prints_unpadded_ids_per_text()
    {
        var (code, stdout, stderr) = Run("tokenize", "--vocab", TokenizerFixtures.GzPath, "a photo of a cat", "Hello, world!!!");
        Assert.Equal(0, code);
        Assert.Equal("", stderr);
        var ids = JsonSerializer.Deserialize<int[][]>(stdout)!;
        Assert.Equal([49406, 320, 1125, 539, 320, 2368, 49407], ids[0]);
        Assert.Equal([49406, 3306, 267, 1002, 995, 49407], ids[1]);
    }

    [Fact]
    public void Reads_input_json_truncates_and_notes_it()
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, JsonSerializer.Serialize(new[] { "cat cat cat cat cat", "a dog" }));
            var (code, stdout, stderr) = Run("tokenize", "--vocab", TokenizerFixtures.HfVocabPath, "--context-length", "4", "--input", file, "x");
            Assert.Equal(0, code);
            var ids = JsonSerializer.Deserialize<int[][]>(stdout)!;
            Assert.Equal(3, ids.Length);
            Assert.Equal([49406, 2368, 2368, 49407], ids[0]);
            Assert.Equal([49406, 320, 1929, 49407], ids[1]);
            Assert.Contains("text 0", stderr);
            Assert.DoesNotContain("text 1", stderr);
        }
        finally { File.Delete(file); }
    }

    [Fact]
    public void Missing_vocab_file_is_exit_code_2()
    {
        var (code, _, stderr) = Run("tokenize", "--vocab", "/nonexistent/bpe.txt.gz", "cat");
        Assert.Equal(2, code);
        Assert.Contains("vocabulary file not found", stderr);
    }

    [Fact]
    public void Bad_input_and_unknown_options_are_exit_code_2()
    {
        Assert.Equal(2, Run("tokenize", "--vocab", TokenizerFixtures.GzPath, "--frobnicate", "1", "cat").Code);
        Assert.Equal(2, Run("tokenize", "--vocab", TokenizerFixtures.GzPath).Code);
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, "{\"not\": \"an array\"}");
            var (code, _, err) = Run("tokenize", "--vocab", TokenizerFixtures.GzPath, "--input", file);
            Assert.Equal(2, code);
            Assert.Contains("JSON array of strings", err);
        }
        finally { File.Delete(file); }
    }
}
