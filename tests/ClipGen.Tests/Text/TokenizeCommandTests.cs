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

    /// <summary>A SigLIP-like spec (demo-tiny's towers) with the given tokenizer section and text ids.</summary>
    static string WriteSpec(string dir, string tokenizer, int vocab, int eos, int pad, int context = 64) =>
        WriteFile(dir, "tok-test.yaml", $"""
            name: tok-test
            class_name: TokTest
            embed_dim: 64
            activation: gelu
            init_logit_scale: 2.3
            vision:
              image_size: 32
              patch_size: 8
              layers: 1
              width: 64
              head_width: 32
            text:
              context_length: {context}
              vocab_size: {vocab}
              width: 64
              heads: 2
              layers: 1
              eos_id: {eos}
              pad_id: {pad}
            tokenizer: {tokenizer}
            preprocess:
              mean: [0.5, 0.5, 0.5]
              std: [0.5, 0.5, 0.5]
              interpolation: bicubic
              resize_mode: shortest
            """);

    static string WriteFile(string dir, string name, string text)
    {
        var p = Path.Combine(dir, name);
        File.WriteAllText(p, text);
        return p;
    }

    [Fact]
    public void Sentencepiece_spec_prints_the_fixture_ids_without_padding()
    {
        var dir = Directory.CreateTempSubdirectory("clipgen-tok-").FullName;
        try
        {
            var spec = WriteSpec(dir, "{kind: sentencepiece, file: spm.model, clean: canonicalize}", vocab: 1000, eos: 1, pad: 1);
            using var doc = JsonDocument.Parse(File.ReadAllText(Fixtures.Path_("tokenizer", "sentencepiece", "cases.json")));
            var cases = doc.RootElement.GetProperty("cases").EnumerateArray()
                .Where(c => c.GetProperty("id").GetInt32() != 12)   // the ftfy mojibake case is checked in SentencePieceTokenizerTests
                .Select(c => (Text: c.GetProperty("text").GetString()!, Ids: c.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToArray()))
                .ToList();
            var input = WriteFile(dir, "texts.json", JsonSerializer.Serialize(cases.Select(c => c.Text)));
            var spm = Fixtures.Path_("tokenizer", "sentencepiece", "spm.model");
            foreach (var vocab in new[] { spm, Path.GetDirectoryName(spm)! })   // the file, or the folder holding tokenizer.file
            {
                var (code, stdout, stderr) = Run("tokenize", "--model", spec, "--vocab", vocab, "--input", input);
                Assert.True(code == 0, stderr);
                var rows = JsonSerializer.Deserialize<int[][]>(stdout)!;
                Assert.Equal(cases.Count, rows.Length);
                for (int i = 0; i < rows.Length; i++)
                {
                    // Unpadded: the ids through the first </s>; the fixture row is that followed by padding (1) up to 64.
                    Assert.Equal(1, rows[i][^1]);
                    Assert.Equal<int[]>(cases[i].Ids, [.. rows[i], .. Enumerable.Repeat(1, 64 - rows[i].Length)]);
                }
            }
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Builtin_siglip_spec_prints_the_fixture_ids()
    {
        // The command, with the built-in ViT-B-16-SigLIP (context 64, </s> = pad = 1, canonicalize) and every case,
        // the ftfy one included.
        var dir = Directory.CreateTempSubdirectory("clipgen-tok-").FullName;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(Fixtures.Path_("tokenizer", "sentencepiece", "cases.json")));
            var cases = doc.RootElement.GetProperty("cases").EnumerateArray()
                .Select(c => (Text: c.GetProperty("text").GetString()!, Ids: c.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToArray()))
                .ToList();
            var input = WriteFile(dir, "texts.json", JsonSerializer.Serialize(cases.Select(c => c.Text)));
            var (code, stdout, stderr) = Run("tokenize", "--model", "ViT-B-16-SigLIP", "--vocab", Fixtures.Path_("tokenizer", "sentencepiece", "spm.model"), "--input", input);
            Assert.True(code == 0, stderr);
            var rows = JsonSerializer.Deserialize<int[][]>(stdout)!;
            Assert.Equal(cases.Count, rows.Length);
            for (int i = 0; i < rows.Length; i++)
                Assert.Equal<int[]>(cases[i].Ids, [.. rows[i], .. Enumerable.Repeat(1, 64 - rows[i].Length)]);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Wordpiece_spec_and_context_override()
    {
        var dir = Directory.CreateTempSubdirectory("clipgen-tok-").FullName;
        try
        {
            var vocab = WriteFile(dir, "vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\na\nphoto\nof\ncat\n");
            var spec = WriteSpec(dir, "{kind: wordpiece, file: vocab.txt, strip_sep_token: true}", vocab: 32, eos: 3, pad: 0, context: 4);
            var (code, stdout, stderr) = Run("tokenize", "--model", spec, "--vocab", dir, "A photo", "a photo of a cat");
            Assert.True(code == 0, stderr);
            Assert.Equal([[2, 4, 5, 0], [2, 4, 5, 0]], JsonSerializer.Deserialize<int[][]>(stdout)!);
            Assert.Contains("text 1", stderr);
            (code, stdout, _) = Run("tokenize", "--model", spec, "--vocab", vocab, "--context-length", "8", "a photo of a cat");
            Assert.Equal(0, code);
            Assert.Equal([[2, 4, 5, 6, 4, 7, 0]], JsonSerializer.Deserialize<int[][]>(stdout)!);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Builtin_bytes_spec_needs_no_vocabulary()
    {
        var (code, stdout, stderr) = Run("tokenize", "--model", "demo-tiny", "hi");
        Assert.True(code == 0, stderr);
        Assert.Equal([[257, 'h' + 1, 'i' + 1, 258]], JsonSerializer.Deserialize<int[][]>(stdout)!);
    }

    [Fact]
    public void Spec_tokenizer_errors_are_exit_code_2_and_name_the_file()
    {
        var dir = Directory.CreateTempSubdirectory("clipgen-tok-").FullName;
        try
        {
            var spec = WriteSpec(dir, "{kind: sentencepiece, file: spm.model, clean: canonicalize}", vocab: 1000, eos: 1, pad: 1);
            var (code, _, err) = Run("tokenize", "--model", spec, "cat");
            Assert.Equal(2, code);
            Assert.Contains("spm.model", err);
            var bogus = WriteFile(dir, "spm.model", "not a model at all");
            (code, _, err) = Run("tokenize", "--model", spec, "--vocab", bogus, "cat");
            Assert.Equal(2, code);
            Assert.Contains(bogus, err);
            Assert.DoesNotContain("   at ", err);
            // The spec embeds fewer ids than the model has.
            var small = WriteSpec(dir, "{kind: sentencepiece, file: spm.model, clean: canonicalize}", vocab: 500, eos: 1, pad: 1);
            (code, _, err) = Run("tokenize", "--model", small, "--vocab", Fixtures.Path_("tokenizer", "sentencepiece", "spm.model"), "cat");
            Assert.Equal(2, code);
            Assert.Contains("vocab_size", err);
        }
        finally { Directory.Delete(dir, true); }
    }
}
