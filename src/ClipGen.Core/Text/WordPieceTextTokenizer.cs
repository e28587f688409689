using System.Globalization;
using System.Text;
using Microsoft.ML.Tokenizers;

namespace ClipGen.Text;

/// <summary>
/// The "wordpiece" kind: CLIPA's <c>bert-base-uncased</c> as open_clip's HFTokenizer uses Hugging Face's BertTokenizerFast:
/// the text is cleaned (<see cref="OpenClipCleaner"/>, default <c>whitespace</c>); the special tokens typed in it are matched
/// first; the rest goes through BERT's normaliser (control characters removed, whitespace to spaces, spaces around CJK
/// ideographs, NFD with non-spacing marks removed, lower case) and pre-tokenizer (split at whitespace, punctuation isolated);
/// each word becomes WordPiece ids (Microsoft.ML.Tokenizers' <see cref="WordPieceTokenizer"/>: longest match first,
/// "##" continuations, [UNK] for a word that cannot be split or is longer than 100 characters); then
/// <c>[CLS] … [SEP]</c>. Batches are cut to the context length with [SEP] last and padded with [PAD]; with
/// <see cref="StripSepToken"/> every [SEP] id becomes 0, as open_clip's <c>strip_sep_token</c>.
/// </summary>
/// <remarks>
/// The normaliser and pre-tokenizer are written here because Microsoft.ML.Tokenizers' BertTokenizer differs from Hugging
/// Face's in ways that change ids: its pre-tokenizer (<c>\w+|\p{P}</c>) drops symbols such as <c>$ + &lt; = &gt; ^ ` | ~</c>
/// and emoji that Hugging Face keeps, and keeps '_' inside words; it removes only Cc controls (Hugging Face removes every
/// C* character but tab, line feed and carriage return, which become spaces); it composes the text again (NFC) after
/// removing accents, so Hangul syllables no longer match BERT's decomposed jamo; it lower-cases only Lu letters; it
/// skips U+3400; and it matches lower-cased special tokens after lower-casing the text, where Hugging Face matches them
/// case-sensitively in the raw text.
/// </remarks>
public sealed class WordPieceTextTokenizer : TextTokenizerBase
{
    /// <summary>Hugging Face's <c>max_input_chars_per_word</c> for BERT: longer words (in code points) become [UNK].</summary>
    public const int MaxInputCharsPerWord = 100;

    static readonly string[] SpecialTokenNames = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

    readonly WordPieceTokenizer _wordPiece;
    readonly (string Token, int Id)[] _specials;
    readonly string[] _tokens; // by id; "" for an empty line

    public override string Kind => TextTokenizers.WordPiece;
    /// <summary>[CLS].</summary>
    public override int? StartId => ClsId;
    /// <summary>[SEP], or 0 with <see cref="StripSepToken"/>.</summary>
    public override int EndId => StripSepToken ? 0 : SepId;
    /// <summary>[PAD].</summary>
    public override int PadId { get; }
    /// <summary>Lines in the vocabulary file.</summary>
    public override int VocabSize { get; }
    public int ClsId { get; }
    public int SepId { get; }
    public int UnkId { get; }
    /// <summary>Replace every [SEP] id by 0 after encoding (open_clip's <c>strip_sep_token</c>, CLIPA).</summary>
    public bool StripSepToken { get; }
    public TextCleaning Cleaning { get; }

    WordPieceTextTokenizer(WordPieceTokenizer wordPiece, Dictionary<string, int> specials, string[] lines, TextCleaning cleaning, bool stripSep)
    {
        _wordPiece = wordPiece;
        _tokens = lines;
        _specials = [.. specials.Select(kv => (kv.Key, kv.Value))];
        VocabSize = lines.Length;
        PadId = specials["[PAD]"];
        ClsId = specials["[CLS]"];
        SepId = specials["[SEP]"];
        UnkId = specials["[UNK]"];
        Cleaning = cleaning;
        StripSepToken = stripSep;
    }

    /// <summary>
    /// Loads a BERT <c>vocab.txt</c> (one token a line, the id is the line number). [PAD], [UNK], [CLS] and [SEP] must be in it.
    /// </summary>
    public static WordPieceTextTokenizer FromFile(string path, TextCleaning cleaning = TextCleaning.Whitespace, bool stripSepToken = false)
    {
        ArgumentNullException.ThrowIfNull(path);
        string[] lines;
        try { lines = File.ReadAllLines(path, Encoding.UTF8); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ClipGenException(File.Exists(path) ? $"cannot read WordPiece vocabulary {path}: {e.Message}" : $"WordPiece vocabulary file not found: {path}", e);
        }
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < lines.Length; i++)
        {
            if (lines[i].Length == 0) continue;
            if (lines[i].Contains('\uFFFD') || lines[i].Contains('\0'))
                throw new ClipGenException($"{path}: line {i + 1} is not UTF-8 text; is this a BERT vocab.txt?");
            if (!index.TryAdd(lines[i], i))
                throw new ClipGenException($"{path}: line {i + 1}: token '{lines[i]}' is already on line {index[lines[i]] + 1}");
        }
        var specials = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var name in SpecialTokenNames)
        {
            if (index.TryGetValue(name, out int id)) specials[name] = id;
            else if (name != "[MASK]") throw new ClipGenException($"{path}: the vocabulary has no {name} token; is this a BERT vocab.txt?");
        }
        WordPieceTokenizer wp;
        try
        {
            using var stream = new MemoryStream(Encoding.UTF8.GetBytes(string.Join('\n', lines)), writable: false);
            wp = WordPieceTokenizer.Create(stream, new WordPieceOptions
            {
                UnknownToken = "[UNK]",
                ContinuingSubwordPrefix = "##",
                // Our own check counts code points (as Hugging Face); this bound only has to admit 100 of them in UTF-16.
                MaxInputCharsPerWord = 2 * MaxInputCharsPerWord,
                SpecialTokens = specials,
            });
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new ClipGenException($"{path}: Microsoft.ML.Tokenizers cannot load this WordPiece vocabulary ({e.GetType().Name}: {e.Message})", e);
        }
        return new WordPieceTextTokenizer(wp, specials, lines, cleaning, stripSepToken);
    }

    /// <summary>[CLS], the cleaned text's ids, [SEP] (0 with <see cref="StripSepToken"/>); not padded, not truncated.</summary>
    public override int[] Encode(string text) => EncodeCleaned(OpenClipCleaner.Clean(text, Cleaning));

    /// <summary>As <see cref="Encode"/> for text that is already cleaned.</summary>
    public int[] EncodeCleaned(string cleanedText)
    {
        ArgumentNullException.ThrowIfNull(cleanedText);
        var ids = new List<int> { ClsId };
        int pos = 0;
        while (pos < cleanedText.Length)
        {
            var (at, special) = NextSpecial(cleanedText, pos);
            EncodeSegment(cleanedText.AsSpan(pos, at - pos), ids);
            if (special < 0) break;
            ids.Add(_specials[special].Id);
            pos = at + _specials[special].Token.Length;
        }
        ids.Add(SepId);
        var result = ids.ToArray();
        if (StripSepToken)
            for (int i = 0; i < result.Length; i++)
                if (result[i] == SepId) result[i] = 0;
        return result;
    }

    /// <summary>The leftmost special token at or after <paramref name="from"/> (the longest if several start there), or (length, -1).</summary>
    (int At, int Special) NextSpecial(string text, int from)
    {
        int bestAt = text.Length, best = -1;
        for (int k = 0; k < _specials.Length; k++)
        {
            int at = text.IndexOf(_specials[k].Token, from, StringComparison.Ordinal);
            if (at < 0) continue;
            if (at < bestAt || (at == bestAt && _specials[k].Token.Length > _specials[best].Token.Length)) { bestAt = at; best = k; }
        }
        return (bestAt, best);
    }

    void EncodeSegment(ReadOnlySpan<char> segment, List<int> ids)
    {
        if (segment.IsEmpty) return;
        var normalized = BertTextNormalizer.Normalize(segment);
        foreach (var (start, length) in BertTextNormalizer.PreTokenize(normalized))
        {
            var word = normalized.AsSpan(start, length);
            if (CodePointCount(word) > MaxInputCharsPerWord) { ids.Add(UnkId); continue; }
            ids.AddRange(_wordPiece.EncodeToIds(word, considerPreTokenization: false, considerNormalization: false));
        }
    }

    static int CodePointCount(ReadOnlySpan<char> s)
    {
        int n = s.Length;
        for (int i = 0; i + 1 < s.Length; i++)
            if (char.IsHighSurrogate(s[i]) && char.IsLowSurrogate(s[i + 1])) { n--; i++; }
        return n;
    }


    /// <summary>
    /// The tokens joined by spaces with "##" continuations glued on (Microsoft.ML.Tokenizers' WordPiece decoding). With
    /// <paramref name="skipSpecialTokens"/> [PAD], [UNK], [CLS], [SEP] and [MASK] are left out (and 0 too, with <see cref="StripSepToken"/>).
    /// </summary>
    public override string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var list = new List<int>();
        foreach (int id in ids)
        {
            if ((uint)id >= (uint)VocabSize || _tokens[id].Length == 0)
                throw new ClipGenException($"token id {id} is not an id of this WordPiece vocabulary (0..{VocabSize - 1})");
            list.Add(id);
        }
        return _wordPiece.Decode(list, skipSpecialTokens) ?? "";
    }
}

/// <summary>
/// Hugging Face tokenizers' <c>BertNormalizer</c> (clean_text, handle_chinese_chars, strip_accents, lowercase: all on, as
/// bert-base-uncased) and <c>BertPreTokenizer</c>, on code points. Character classes come from .NET's Unicode tables.
/// </summary>
static class BertTextNormalizer
{
    /// <summary>clean text → spaces around CJK ideographs → NFD without non-spacing marks → lower case (per code point).</summary>
    public static string Normalize(ReadOnlySpan<char> text)
    {
        var sb = new StringBuilder(text.Length + 8);
        foreach (var r in text.EnumerateRunes())
        {
            int c = r.Value;
            if (c == 0 || c == 0xFFFD || IsControl(r)) continue;
            if (IsWhitespace(r)) { sb.Append(' '); continue; }
            if (IsChineseChar(c)) { sb.Append(' ').Append(r.ToString()).Append(' '); continue; }
            sb.Append(r.ToString());
        }
        // Unpaired surrogates became U+FFFD in EnumerateRunes and were dropped above, so the string is well-formed.
        var decomposed = sb.ToString().Normalize(NormalizationForm.FormD);
        sb.Clear();
        Span<char> buf = stackalloc char[2];
        foreach (var r in decomposed.EnumerateRunes())
        {
            if (Rune.GetUnicodeCategory(r) == UnicodeCategory.NonSpacingMark) continue;
            // Rust's char::to_lowercase: the full mapping differs from the simple one only for U+0130, which NFD has split.
            sb.Append(buf[..Rune.ToLowerInvariant(r).EncodeToUtf16(buf)]);
        }
        return sb.ToString();
    }

    /// <summary>Split at whitespace (removed), then every punctuation character on its own: (start, length) in UTF-16 units.</summary>
    public static IEnumerable<(int Start, int Length)> PreTokenize(string s)
    {
        int start = -1;
        for (int i = 0; i < s.Length;)
        {
            var r = Rune.GetRuneAt(s, i);
            int n = r.Utf16SequenceLength;
            if (IsWhitespace(r) || IsPunctuation(r))
            {
                if (start >= 0) { yield return (start, i - start); start = -1; }
                if (!IsWhitespace(r)) yield return (i, n);
            }
            else if (start < 0) start = i;
            i += n;
        }
        if (start >= 0) yield return (start, s.Length - start);
    }

    /// <summary>Tab, line feed, carriage return, and Rust's <c>char::is_whitespace</c> (the White_Space property).</summary>
    internal static bool IsWhitespace(Rune r) => PythonUnicode.IsRegexSpace(r.Value);

    /// <summary>Every C* category (Cc, Cf, Cs, Co, Cn) except tab, line feed and carriage return.</summary>
    internal static bool IsControl(Rune r)
    {
        if (r.Value is '\t' or '\n' or '\r') return false;
        return Rune.GetUnicodeCategory(r) is UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.Surrogate
            or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned;
    }

    /// <summary>ASCII punctuation (Python's <c>string.punctuation</c>) or a P* category.</summary>
    internal static bool IsPunctuation(Rune r)
    {
        int c = r.Value;
        if (c < 0x80) return c is (>= 0x21 and <= 0x2F) or (>= 0x3A and <= 0x40) or (>= 0x5B and <= 0x60) or (>= 0x7B and <= 0x7E);
        return Rune.GetUnicodeCategory(r) is UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation
            or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation
            or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation;
    }

    /// <summary>Hugging Face's <c>is_chinese_char</c> ranges (note 0x2B920, not 0x2B820, as in tokenizers' bert.rs).</summary>
    internal static bool IsChineseChar(int c) =>
        c is (>= 0x4E00 and <= 0x9FFF) or (>= 0x3400 and <= 0x4DBF) or (>= 0x20000 and <= 0x2A6DF) or (>= 0x2A700 and <= 0x2B73F)
            or (>= 0x2B740 and <= 0x2B81F) or (>= 0x2B920 and <= 0x2CEAF) or (>= 0xF900 and <= 0xFAFF) or (>= 0x2F800 and <= 0x2FA1F);
}
