#!/usr/bin/env python3
"""Makes ftfy_reference.json, which tests/ClipGen.Tests/Text/FtfyTests.cs reads: ftfy 6.3.1's fix_text on strings this
script makes up, most of them mojibake made here (UTF-8 bytes read in the wrong single-byte encoding, sometimes twice,
sometimes with byte A0 turned into a space or undefined bytes lost), mixed with clean text, entities and controls.

    PYTHONPATH=<a directory holding ftfy 6.3.1> python3 tests/ClipGen.Tests/Text/Data/make_ftfy_refs.py

Deterministic: random.Random(20261130).
"""
import json
import os
import random

import ftfy

assert ftfy.__version__ == "6.3.1", ftfy.__version__

HERE = os.path.dirname(os.path.abspath(__file__))

CLEAN = [
    "café", "crème brûlée", "naïve", "façade", "jalapeño", "Ärger", "straße", "Ελληνικά", "русский текст", "Łódź",
    "Příliš žluťoučký kůň", "İstanbul", "€100", "“quoted”", "‘single’", "—dash—", "…", "½ cup", "×", "©2026",
    "日本語", "中文", "한국어", "😀", "👍🏽", "a photo of a cat", "été", "à la carte", "voilà le travail", "señor",
    "Æsir", "ø", "ß", "¿qué?", "¡sí!", "naïve café", "Zürich", "Ŝ", "ő", "ű", "ç", "ğ", "ş", "ı",
]
ENCODINGS = ["latin-1", "windows-1252", "windows-1251", "windows-1250", "windows-1253", "windows-1254",
             "windows-1257", "iso-8859-2", "macroman", "cp437"]
NOISE = [" ", "  ", "\n", "\t", "&amp;", "&eacute;", "&#x2019;", "\x85", "\x96", "\u00a0", "ﬁ", "Ａ", "\x1b[1m", "<b>"]


def mojibake(rng, s):
    out = s
    for _ in range(rng.choice([1, 1, 1, 2])):
        enc = rng.choice(ENCODINGS)
        try:
            out = out.encode("utf-8").decode(enc, errors=rng.choice(["strict", "replace"]))
        except UnicodeDecodeError:
            return out
    if rng.random() < 0.15:
        out = out.replace("\u00a0", " ")
    return out


def main():
    rng = random.Random(20261130)
    strings = []
    for _ in range(400):
        parts = []
        for _ in range(rng.randint(1, 5)):
            w = rng.choice(CLEAN)
            r = rng.random()
            parts.append(mojibake(rng, w) if r < 0.6 else w)
            if rng.random() < 0.3:
                parts.append(rng.choice(NOISE))
            parts.append(rng.choice([" ", " ", "", ", "]))
        strings.append("".join(parts))
    strings += ["mojibake: Ã©tÃ©", "sÃ³", "voilÃ le travail", "âœ” No problems", "&macr;\\_(ã\x83\x84)_/&macr;",
                "Ã¢â‚¬Å“doubleÃ¢â‚¬Â", "â€œ like this â€\ufffd", "cafÃ©\ncafÃ©", "I'm ÃŸ", "ÃƒÂ©"]
    cases = [{"text": s, "fixed": ftfy.fix_text(s)} for s in strings]
    head = {"made_by": "make_ftfy_refs.py: ftfy.fix_text (ftfy 6.3.1, default configuration)"}
    lines = [json.dumps(c, ensure_ascii=False, separators=(",", ":")) for c in cases]
    with open(os.path.join(HERE, "ftfy_reference.json"), "w", encoding="utf-8") as f:
        f.write(json.dumps(head, ensure_ascii=False)[:-1] + ', "cases": [\n' + ",\n".join(lines) + "\n]}\n")


if __name__ == "__main__":
    main()
