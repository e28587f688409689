#!/usr/bin/env python3
"""Makes wordpiece_reference.json, which tests/ClipGen.Tests/Text/WordPieceTokenizerTests.cs reads: an independent
Python implementation, written from Hugging Face tokenizers' BertNormalizer, BertPreTokenizer and WordPiece model
(bert-base-uncased settings), run on seeded random strings with a vocabulary the script makes up. It is not Hugging
Face's own code (which cannot be installed here); it checks the C# port against a second reading of the same rules,
with Python's Unicode tables.

    python3 tests/ClipGen.Tests/Text/Data/make_wordpiece_refs.py
"""
import json
import os
import random
import unicodedata

HERE = os.path.dirname(os.path.abspath(__file__))
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def is_chinese(cp):
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or 0x2A700 <= cp <= 0x2B73F
            or 0x2B740 <= cp <= 0x2B81F or 0x2B920 <= cp <= 0x2CEAF or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


WHITE_SPACE = set([0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000]
                  + list(range(0x2000, 0x200B)))


def normalize(text):
    out = []
    for ch in text:
        cp = ord(ch)
        if ch in "\t\n\r":
            out.append(" ")
            continue
        if cp == 0 or cp == 0xFFFD or unicodedata.category(ch).startswith("C"):
            continue
        if cp in WHITE_SPACE:
            out.append(" ")
        elif is_chinese(cp):
            out.append(" " + ch + " ")
        else:
            out.append(ch)
    s = unicodedata.normalize("NFD", "".join(out))
    s = "".join(c for c in s if unicodedata.category(c) != "Mn")
    return "".join(c.lower() if c != "\u0130" else "i\u0307" for c in s)


def is_punct(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def pre_tokenize(s):
    words, cur = [], ""
    for ch in s:
        if ord(ch) in WHITE_SPACE:
            if cur:
                words.append(cur)
            cur = ""
        elif is_punct(ch):
            if cur:
                words.append(cur)
            words.append(ch)
            cur = ""
        else:
            cur += ch
    if cur:
        words.append(cur)
    return words


def wordpiece(word, vocab):
    if len(word) > 100:
        return [vocab["[UNK]"]]
    ids, start = [], 0
    while start < len(word):
        end, found = len(word), None
        while start < end:
            sub = word[start:end]
            if start > 0:
                sub = "##" + sub
            if sub in vocab:
                found = vocab[sub]
                break
            end -= 1
        if found is None:
            return [vocab["[UNK]"]]
        ids.append(found)
        start = end
    return ids


def encode(text, vocab):
    ids = [vocab["[CLS]"]]
    pos = 0
    while pos <= len(text):
        hits = [(text.find(t, pos), -len(t), t) for t in SPECIALS if text.find(t, pos) >= 0]
        at, _, tok = min(hits) if hits else (len(text), 0, None)
        for w in pre_tokenize(normalize(text[pos:at])):
            ids += wordpiece(w, vocab)
        if tok is None:
            break
        ids.append(vocab[tok])
        pos = at + len(tok)
    return ids + [vocab["[SEP]"]]


WORDS = "a photo of the cat dog bird house tree car red blue green small large running under over with".split()
ATOMS = WORDS + [w.upper() for w in WORDS[:6]] + [
    "café", "Naïve", "ÉCOLE", "straße", "İ", "Σ", "ΣΑΣ", "ǅ", "한국어", "日本語", "中文", "㐀", "\U0002B820", "\U0002B920",
    "😀", "👍🏽", "©", "®", "½", "①", "ﬁ", "Ａ", "\u200b", "\u200d", "\u00ad", "\ue000", "\ufeff", "\u0301", "e\u0301",
    ",", ".", "!", "?", "'", "_", "-", "$", "+", "<", ">", "=", "^", "`", "|", "~", "«", "»", "—", "…", "¿", "、",
    " ", "  ", "\t", "\n", "\u00a0", "\u3000", "\u2028", "\x0b", "\x85", "\x1c", "\x00", "\ufffd",
    "[SEP]", "[CLS]", "[PAD]", "[MASK]", "[UNK]", "[sep]", "[SEP", "x" * 101, "ab" * 60, "\U0001D49C" * 60,
]


def main():
    rng = random.Random(20261130)
    vocab_list = list(SPECIALS)
    for w in WORDS + ["cafe", "naive", "ecole", "straße", "i", "σ", "σας", "ǆ", "中", "文", "日", "本", "語", "㐀",
                      "©", "½", "ﬁ", "a", "##s", "##e", "##a", "##b", "ab", "x", "##x", "ᄒ", "##ᅡ", "##ᆫ"]:
        if w not in vocab_list:
            vocab_list.append(w)
    for ch in ",.!?'_-$+<>=^`|~«»—…¿、":
        vocab_list.append(ch)
    vocab = {t: i for i, t in enumerate(vocab_list)}
    strings = []
    for _ in range(400):
        k = rng.choice([1, 2, 3, 5, 8, 13])
        strings.append("".join(rng.choice(ATOMS) + rng.choice(["", " ", " "]) for _ in range(k)))
    cases = [{"text": s, "ids": encode(s, vocab)} for s in strings]
    head = {"made_by": "make_wordpiece_refs.py: an independent Python reading of HF's BERT normaliser, pre-tokenizer and "
                       "WordPiece (not HF's code); no cleaning", "vocab": vocab_list}
    lines = [json.dumps(c, ensure_ascii=False, separators=(",", ":")) for c in cases]
    with open(os.path.join(HERE, "wordpiece_reference.json"), "w", encoding="utf-8") as f:
        f.write(json.dumps(head, ensure_ascii=False)[:-1] + ', "cases": [\n' + ",\n".join(lines) + "\n]}\n")


if __name__ == "__main__":
    main()
