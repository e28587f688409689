using System.Text;
using System.Text.Json;
using ClipGen.Text;

namespace ClipGen.Cli.Commands;

/// <summary><c>clipgen tokenize</c>: CLIP BPE ids of texts, as JSON.</summary>
sealed class TokenizeCommand : ICommand
{
    public string Name => "tokenize";
    public string Summary => "CLIP BPE token ids of texts, as a JSON array";
    public string Usage =>
        "clipgen tokenize [--vocab FILE] [--context-length N] [--input texts.json] [TEXT...]\n" +
        "  --vocab FILE          bpe_simple_vocab_16e6.txt.gz, or a Hugging Face vocab.json with merges.txt beside it\n" +
        "                        (default: $CLIPGEN_VOCAB)\n" +
        "  --context-length N    cut longer texts to N ids, keeping the end token last (default 77)\n" +
        "  --input FILE          a JSON array of strings, tokenized before the TEXT arguments\n" +
        "Prints one array of unpadded ids per text; says on stderr which texts were truncated.";

    public int Run(CliArgs args, TextWriter stdout, TextWriter stderr)
    {
        var vocab = args.Get("vocab");
        int contextLength = args.GetInt("context-length", ClipTokenizer.DefaultContextLength);
        var input = args.Get("input");
        args.RejectUnknown();
        if (contextLength < 2) throw new CliUsageException($"--context-length must be at least 2, not {contextLength}");

        var texts = new List<string>();
        if (input is not null) texts.AddRange(ReadTexts(input));
        texts.AddRange(args.Positional);
        if (texts.Count == 0) throw new CliUsageException("give texts as arguments or --input FILE");

        var tokenizer = TextTokenizers.Create(TextTokenizers.ClipBpe, vocab);
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
        sb.Append(texts.Count > 0 ? "\n]" : "]");
        stdout.WriteLine(sb.ToString());
        if (truncated.Count > 0)
            stderr.WriteLine($"note: truncated to {contextLength} tokens (end token kept): " +
                string.Join(", ", truncated.Select(i => $"text {i} \"{Shorten(texts[i])}\"")));
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

    static string Shorten(string s)
    {
        s = s.ReplaceLineEndings(" ");
        return s.Length <= 40 ? s : s[..(char.IsHighSurrogate(s[36]) ? 36 : 37)] + "...";
    }
}
