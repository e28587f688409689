using System.CommandLine;
using System.Text;
using System.Text.Json;
using ClipGen.Modeling;
using ClipGen.Text;

namespace ClipGen.Cli.Commands;

/// <summary><c>clipgen tokenize</c>: token ids of texts, as JSON, with CLIP's BPE or with a model's own tokenizer.</summary>
sealed class TokenizeCommand : CliCommand
{
    readonly Argument<string[]> _texts = new("TEXT") { Description = "texts to tokenize. Prints one array of ids per text, cut to the context length but without the trailing padding " +
        "(a batch row is the array followed by the pad id up to the context length); says on stderr which texts were truncated", Arity = ArgumentArity.ZeroOrMore };
    readonly Option<string?> _model = CliOptions.Text("--model", "NAME|SPEC.yaml",
        "use the tokenizer the model's spec declares (clip_bpe, bytes, sentencepiece, wordpiece), with its cleaning, end and pad ids and context length; default: OpenAI CLIP's BPE");
    readonly Option<string?> _vocab = CliOptions.Text("--vocab", "FILE",
        "the vocabulary: bpe_simple_vocab_16e6.txt.gz or a Hugging Face vocab.json (clip_bpe; default $CLIPGEN_VOCAB), a SentencePiece model such as spiece.model (sentencepiece), " +
        "a BERT vocab.txt (wordpiece), or the folder holding the spec's tokenizer file");
    readonly Option<int?> _contextLength = CliOptions.OptionalInt("--context-length", "cut longer texts to N ids, keeping the end token last (default: the spec's, else 77)", min: 2);
    readonly Option<string?> _input = CliOptions.Text("--input", "FILE", "a JSON array of strings, tokenized before the TEXT arguments");

    public TokenizeCommand() : base("tokenize", "token ids of texts (CLIP BPE, or the tokenizer of --model), as a JSON array")
    {
        Arguments.Add(_texts);
        foreach (var o in new Option[] { _model, _vocab, _contextLength, _input }) Add(o);
    }

    public override int Run(ParseResult args, TextWriter stdout, TextWriter stderr)
    {
        var model = args.GetValue(_model);
        var vocab = args.GetValue(_vocab);
        var contextArg = args.GetValue(_contextLength);
        var input = args.GetValue(_input);

        var texts = new List<string>();
        if (input is not null) texts.AddRange(ReadTexts(input));
        texts.AddRange(args.GetValue(_texts) ?? []);
        if (texts.Count == 0) throw new CliUsageException("give texts as arguments or --input FILE");

        ITextTokenizer tokenizer;
        int contextLength = ClipTokenizer.DefaultContextLength;
        if (model is null)
            tokenizer = TextTokenizers.Create(TextTokenizers.ClipBpe, vocab);
        else
        {
            var spec = ClipModelFactory.ResolveSpec(model);
            tokenizer = TextTokenizers.Create(spec, vocab);
            contextLength = spec.Text.ContextLength;
        }
        if (contextArg is { } c) contextLength = c;

        var sb = new StringBuilder();
        var truncated = new List<int>();
        sb.Append('[');
        for (int i = 0; i < texts.Count; i++)
        {
            var ids = tokenizer.Encode(texts[i]);
            if (ids.Length > contextLength) truncated.Add(i);
            ids = TokenBatching.Truncate(ids, contextLength, tokenizer.EndId);
            sb.Append(i == 0 ? "\n  [" : ",\n  [").AppendJoin(',', ids).Append(']');
        }
        sb.Append("\n]");
        stdout.WriteLine(sb.ToString());
        if (truncated.Count > 0)
            stderr.WriteLine($"note: truncated to {contextLength} tokens (end token kept): " +
                string.Join(", ", truncated.Select(i => $"text {i} \"{TokenBatching.Shorten(texts[i])}\"")));
        return 0;
    }

    static IEnumerable<string> ReadTexts(string path)
    {
        if (!File.Exists(path)) throw new ClipGenException($"input file not found: {path}");
        try
        {
            using var f = File.OpenRead(path);
            var list = JsonSerializer.Deserialize<List<string?>>(f)
                ?? throw new ClipGenException($"{path}: expected a JSON array of strings, not null");
            for (int i = 0; i < list.Count; i++)
                if (list[i] is null) throw new ClipGenException($"{path}: element {i} is null; expected a JSON array of strings");
            return list!;
        }
        catch (JsonException e)
        {
            throw new ClipGenException($"{path}: expected a JSON array of strings ({e.Message})", e);
        }
    }
}
