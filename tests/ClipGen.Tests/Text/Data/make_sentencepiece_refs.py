#!/usr/bin/env python3
"""Makes the SentencePiece reference data that tests/ClipGen.Tests/Text/SentencePieceTokenizerTests.cs reads.

Run with Debian's sentencepiece (apt-get install python3-sentencepiece; 0.1.97, the version that made the shared
fixture) from the repository root:

    /usr/bin/python3 tests/ClipGen.Tests/Text/Data/make_sentencepiece_refs.py [FIXTURES_DIR]

It writes, next to itself:
* unigram_reference.json: Google's ids for seeded random strings under the shared fixture's unigram model
  (tokenizer/sentencepiece/spm.model: T5 layout, no BOS piece), encoded as they are (no open_clip cleaning).
* gemma_like_bpe.model: a small BPE model trained here on sentences this script makes up, with the settings of
  Gemma's tokenizer (SigLIP 2): byte fallback, no dummy prefix, no whitespace folding, identity normalisation,
  digits split, <pad>=0 </s>=1 <s>=2 <unk>=3, and a few user-defined pieces.
* gemma_like_bpe_reference.json: Google's ids for seeded random strings under that model.
The strings are drawn with random.Random(20261130), so the output is the same on every run with the same library.
"""
import io
import json
import os
import random
import sys

import sentencepiece as spm

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = sys.argv[1] if len(sys.argv) > 1 else os.environ.get(
    "CLIPGEN_FIXTURES", os.path.join(HERE, "..", "..", "..", "..", "..", "shared", "fixtures"))

WORDS = ("a photo of the cat dog bird license software free copy program source code version terms "
         "distribute modify public general work any other without warranty condition notice permission "
         "image picture small large red blue green bright dark tree house river mountain city street car "
         "running jumping sitting under over beside with and or not this that these those is are was were").split()

ATOMS = WORDS + [
    " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", "\u00a0", "\u3000", "\u2003",
    ",", ".", "!", "?", "'", '"', "-", "_", "(", ")", "[", "]", "&amp;", "<b>", "#", "%", "$", "@", "/", ":", ";",
    "0", "7", "42", "2026", "3.14", "1,000",
    "café", "crème", "naïve", "Ärger", "ÉCOLE", "straße", "ﬁne", "ＡＢＣ", "ｶﾀｶﾅ", "e\u0301", "n\u0303",
    "日本語", "のテキスト", "中文", "한국어", "العربية", "עברית", "русский", "ελληνικά", "हिन्दी", "ไทย",
    "😀", "👍🏽", "🇫🇷", "𝒜", "\u200b", "\u200d", "\ufeff", "\u2581", "\u2581\u2581", "▁x",
    "<s>", "</s>", "<pad>", "<unk>", "<mask>", "<0x41>",
    "A", "Photo", "DOG", "Cat", "The",
]


def random_strings(rng, n):
    out = []
    for i in range(n):
        k = rng.choice([1, 2, 3, 5, 8, 13, 21])
        s = "".join(rng.choice(ATOMS) + rng.choice(["", "", " ", " "]) for _ in range(k))
        out.append(s)
    # Edge cases written out.
    out += ["", " ", "  ", "\u2581", "a", " a", "a ", "  a  b  ", "x" * 300, "ab" * 150, "😀" * 40, "7" * 50]
    return out


def cases(sp, strings):
    return [{"text": s, "ids": sp.encode(s)} for s in strings]


def write_json(name, obj):
    # One case a line, so that a diff shows which case changed.
    head = {k: v for k, v in obj.items() if k != "cases"}
    lines = [json.dumps(c, ensure_ascii=False, separators=(",", ":")) for c in obj["cases"]]
    with open(os.path.join(HERE, name), "w", encoding="utf-8") as f:
        f.write(json.dumps(head, ensure_ascii=False)[:-1] + ', "cases": [\n' + ",\n".join(lines) + "\n]}\n")


def sentences(rng, n):
    extra = ["café", "naïve", "straße", "2026", "42", "photo", "<b>bold</b>", "a  b", " leading", "tab\there"]
    for _ in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(3, 14))]
        if rng.random() < 0.3:
            words.insert(rng.randrange(len(words)), rng.choice(extra))
        s = " ".join(words)
        yield s[0].upper() + s[1:] + rng.choice([".", "!", "?", ",", ""])


def main():
    rng = random.Random(20261130)
    unigram = os.path.join(FIXTURES, "tokenizer", "sentencepiece", "spm.model")
    sp = spm.SentencePieceProcessor(model_file=unigram)
    assert sp.bos_id() == -1 and sp.eos_id() == 1 and sp.pad_id() == 0, "not the T5-layout fixture model"
    write_json("unigram_reference.json", {
        "made_by": f"make_sentencepiece_refs.py with sentencepiece {spm.__version__}: encode(text), no cleaning, no </s>",
        "model": "shared fixture tokenizer/sentencepiece/spm.model",
        "cases": cases(sp, random_strings(rng, 300)),
    })

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=sentences(random.Random(7), 3000), model_writer=model,
        model_type="bpe", vocab_size=700, character_coverage=1.0, byte_fallback=True,
        pad_id=0, eos_id=1, bos_id=2, unk_id=3, add_dummy_prefix=False, remove_extra_whitespaces=False,
        normalization_rule_name="identity", split_digits=True, allow_whitespace_only_pieces=True,
        user_defined_symbols=["<mask>", "\n\n", "<table>"], minloglevel=2)
    data = model.getvalue()
    with open(os.path.join(HERE, "gemma_like_bpe.model"), "wb") as f:
        f.write(data)
    bpe = spm.SentencePieceProcessor(model_proto=data)
    assert (bpe.pad_id(), bpe.eos_id(), bpe.bos_id(), bpe.unk_id()) == (0, 1, 2, 3)
    write_json("gemma_like_bpe_reference.json", {
        "made_by": f"make_sentencepiece_refs.py with sentencepiece {spm.__version__}: encode(text), no cleaning, no </s>",
        "model": "gemma_like_bpe.model (BPE, byte fallback, identity normalisation, no dummy prefix; trained by the script)",
        "cases": cases(bpe, random_strings(rng, 300)),
    })


if __name__ == "__main__":
    main()
