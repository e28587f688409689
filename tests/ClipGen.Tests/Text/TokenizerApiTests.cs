using ClipGen.Text;
using TorchSharp;
using Xunit;

namespace ClipGen.Tests.Text;

public sealed class TokenizerApiTests
{
    static ClipTokenizer Tok => TokenizerFixtures.Gz;

    [Fact]
    public void Truncation_keeps_the_end_token_and_reports_rows()
    {
        var longText = string.Join(' ', Enumerable.Repeat("cat", 100));
        var rows = Tok.EncodeBatch(["a photo of a cat", longText], 77, TruncationMode.Truncate, out var truncated);
        Assert.Equal([1], truncated);
        Assert.Equal(49407, rows[77 + 76]);
        Assert.Equal(2368, rows[77 + 75]);
        Assert.Equal([49406, 320, 1125, 539, 320, 2368, 49407, 0], rows[..8]);
    }

    [Fact]
    public void Error_mode_names_the_text_and_its_token_count()
    {
        var longText = "the longest caption " + string.Join(' ', Enumerable.Repeat("cat", 100));
        var e = Assert.Throws<ClipGenException>(() => Tok.EncodeBatch(["ok", longText], 77, TruncationMode.Error));
        Assert.Contains("text 1", e.Message);
        Assert.Contains("the longest caption", e.Message);
        Assert.Contains("105 tokens", e.Message);
        Assert.DoesNotContain("\n", e.Message);
    }

    [Fact]
    public void Large_batches_are_encoded_in_parallel_with_the_same_result()
    {
        var texts = Enumerable.Range(0, 1000).Select(i => $"photo number {i} of a {(i % 2 == 0 ? "cat" : "dog")}").ToList();
        var batch = Tok.EncodeBatch(texts, 16);
        for (int i = 0; i < texts.Count; i++)
        {
            var one = TokenBatching.Truncate(Tok.Encode(texts[i]), 16, Tok.EndId);
            Assert.Equal(one.Select(x => (long)x), batch.AsSpan(i * 16, one.Length).ToArray());
        }
    }

    [Fact]
    public void Context_length_below_two_is_rejected() =>
        Assert.Throws<ClipGenException>(() => Tok.EncodeBatch(["x"], 1));

    [Fact]
    public void Tensor_helper_gives_int64_N_by_C()
    {
        using var t = Tok.EncodeToTensor(["a photo of a cat", "a dog"], 77);
        Assert.Equal([2L, 77L], t.shape);
        Assert.Equal(torch.ScalarType.Int64, t.dtype);
        Assert.Equal(2368L, t[0, 5].item<long>());
    }

    [Fact]
    public void Decode_skips_special_tokens_on_request_and_rejects_unknown_ids()
    {
        var ids = Tok.Encode("Hello, world!!!");
        Assert.Equal("<|startoftext|>hello , world !!! <|endoftext|>", Tok.Decode(ids));
        Assert.Equal("hello , world !!! ", Tok.Decode(ids, skipSpecialTokens: true));
        Assert.Throws<ClipGenException>(() => Tok.Decode([49408]));
        Assert.Equal("\u00C3", Tok.IdToToken(127));
        Assert.Equal("\uFFFD", Tok.Decode([127])); // a lone UTF-8 lead byte: errors='replace'
    }

    [Fact]
    public void Bytes_tokenizer_ids()
    {
        var b = BytesTokenizer.Instance;
        Assert.Equal([257, 'h' + 1, 'i' + 1, 258], b.Encode("hi"));
        Assert.Equal(259, b.VocabSize);
        Assert.Equal("<|startoftext|>hi<|endoftext|>", b.Decode(b.Encode("hi")));
        Assert.Equal([257L, 'h' + 1, 'i' + 1, 258, 0], b.EncodeBatch(["hi"], 5));
        Assert.Equal([257L, 'a' + 1, 258], b.EncodeBatch(["abc"], 3));
        Assert.Throws<ClipGenException>(() => b.Decode([259]));
    }

    [Fact]
    public void Factory_knows_its_kinds()
    {
        Assert.Same(BytesTokenizer.Instance, TextTokenizers.Create("bytes", null));
        var clip = TextTokenizers.Create("clip_bpe", TokenizerFixtures.GzPath);
        Assert.Equal(49408, clip.VocabSize);
        Assert.Same(clip, TextTokenizers.Create("clip_bpe", TokenizerFixtures.GzPath));
        Assert.Equal(49408, TextTokenizers.Create("clip_bpe", Path.GetDirectoryName(TokenizerFixtures.HfVocabPath)).VocabSize);
        var e = Assert.Throws<ClipGenException>(() => TextTokenizers.Create("frobnicate", null));
        Assert.Contains("clip_bpe, bytes, sentencepiece, wordpiece", e.Message);
        // These two take their cleaning and ids from a spec: refused here rather than built with guessed settings.
        Assert.Contains("spec", Assert.Throws<ClipGenException>(() => TextTokenizers.Create("wordpiece", null)).Message);
        Assert.Contains("spec", Assert.Throws<ClipGenException>(() => TextTokenizers.Create("sentencepiece", SpmPath)).Message);
        Assert.Throws<ClipGenException>(() => TextTokenizers.Create("clip_bpe", "/nonexistent/vocab.txt.gz"));
    }

    [Fact]
    public void Missing_vocabulary_says_how_to_provide_one()
    {
        var saved = Environment.GetEnvironmentVariable(TextTokenizers.VocabEnvironmentVariable);
        try
        {
            Environment.SetEnvironmentVariable(TextTokenizers.VocabEnvironmentVariable, null);
            var e = Assert.Throws<ClipGenException>(() => TextTokenizers.ResolveVocabPath(null));
            Assert.DoesNotContain("--", e.Message); // a library message; the CLI adds "--vocab FILE"
            Assert.Equal(ClipGenSetting.Vocabulary, e.Setting);
            Assert.Contains("CLIPGEN_VOCAB", e.Message);
        }
        finally { Environment.SetEnvironmentVariable(TextTokenizers.VocabEnvironmentVariable, saved); }
    }

    [Fact]
    public void Concurrent_encoding_with_a_tiny_cache_is_consistent()
    {
        var tok = ClipTokenizer.FromOpenAI(TokenizerFixtures.GzPath, cacheCapacity: 8);
        var texts = TokenizerFixtures.Cases.Select(c => c.Text).ToArray();
        var expected = texts.Select(Tok.Encode).ToArray();
        Parallel.For(0, 2000, i => Assert.Equal(expected[i % texts.Length], tok.Encode(texts[i % texts.Length])));
    }

    static string SpmPath => Fixtures.Path_("tokenizer", "sentencepiece", "spm.model");

    static Specs.ClipSpec Spec(string kind, string file, string clean, int vocab, int eos, int pad, bool strip = false) => new()
    {
        Name = "test-" + kind,
        Text = new Specs.TextSpec { ContextLength = 64, VocabSize = vocab, EosId = eos, PadId = pad },
        Tokenizer = new Specs.TokenizerSpec { Kind = kind, File = file, Clean = clean, StripSepToken = strip },
    };

    [Fact]
    public void Factory_builds_sentencepiece_from_the_spec()
    {
        var siglip = Assert.IsType<SentencePieceTextTokenizer>(TextTokenizers.Create(Spec("sentencepiece", "spm.model", "canonicalize", 1000, 1, 1), SpmPath));
        Assert.Equal((TextCleaning.Canonicalize, 1, 1, 1000), (siglip.Cleaning, siglip.EndId, siglip.PadId, siglip.VocabSize));
        Assert.Equal(siglip.Encode("a photo of a cat"), TextTokenizers.Create(Spec("sentencepiece", "spm.model", "canonicalize", 1000, 1, 1), Path.GetDirectoryName(SpmPath)).Encode("a photo of a cat"));
        var lower = Assert.IsType<SentencePieceTextTokenizer>(TextTokenizers.Create(Spec("sentencepiece", "spm.model", "lower", 1000, 1, 0), SpmPath));
        Assert.Equal((TextCleaning.Lower, 0), (lower.Cleaning, lower.PadId));
        // The spec's ids and size are checked against the model.
        Assert.Contains("end-of-text", Assert.Throws<ClipGenException>(() => TextTokenizers.Create(Spec("sentencepiece", "spm.model", "canonicalize", 1000, 49407, 1), SpmPath)).Message);
        Assert.Contains("vocab_size", Assert.Throws<ClipGenException>(() => TextTokenizers.Create(Spec("sentencepiece", "spm.model", "canonicalize", 999, 1, 1), SpmPath)).Message);
        var none = Assert.Throws<ClipGenException>(() => TextTokenizers.Create(Spec("sentencepiece", "spm.model", "canonicalize", 1000, 1, 1), null));
        Assert.Contains("'spm.model'", none.Message);
        var missing = Path.Combine(Path.GetTempPath(), "clipgen-no-such-dir");
        Assert.Contains("not found", Assert.Throws<ClipGenException>(() => TextTokenizers.Create(Spec("sentencepiece", "spm.model", "canonicalize", 1000, 1, 1), missing)).Message);
    }

    [Fact]
    public void Factory_builds_wordpiece_from_the_spec()
    {
        var dir = Directory.CreateTempSubdirectory("clipgen-wpf-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "vocab.txt"), "[PAD]\n[UNK]\n[CLS]\n[SEP]\ncat\n");
            var tok = Assert.IsType<WordPieceTextTokenizer>(TextTokenizers.Create(Spec("wordpiece", "vocab.txt", "whitespace", 32000, 3, 0, strip: true), dir));
            Assert.Equal((TextCleaning.Whitespace, true, 0), (tok.Cleaning, tok.StripSepToken, tok.EndId));
            Assert.Equal([2, 4, 0], tok.Encode("Cat"));
            Assert.Contains("pad_id", Assert.Throws<ClipGenException>(() => TextTokenizers.Create(Spec("wordpiece", "vocab.txt", "whitespace", 32000, 3, 1), dir)).Message);
        }
        finally { Directory.Delete(dir, true); }
    }
}
