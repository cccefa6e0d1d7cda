"""Parallel corpus reading (TSV, TMX), every bad-input message, the held-out split, metrics."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import ConfigError
from training.translation_data import normalize_tag, read_pairs, split_pairs
from training.translation_metrics import bleu_tokenizer, score

TMX_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'
HEADER = ('<header srclang="en-US" datatype="plaintext" segtype="sentence" adminlang="en" '
          'creationtool="t" creationtoolversion="1" o-tmf="t"/>')


def _write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def _tmx(body: str, header: str = HEADER, prolog: str = TMX_HEAD) -> str:
    return f'{prolog}<tmx version="1.4">{header}\n<body>\n{body}\n</body></tmx>\n'


def _tu(**variants: str) -> str:
    tuvs = "".join(f'<tuv xml:lang="{lang.replace("_", "-")}"><seg>{text}</seg></tuv>'
                   for lang, text in variants.items())
    return f"<tu>{tuvs}</tu>"


# TSV -------------------------------------------------------------------------------------------


def test_tsv_pairs_with_bom_crlf_and_empty_lines(tmp_path: Path) -> None:
    path = _write(tmp_path, "pairs.tsv",
                  b"\xef\xbb\xbfhello\thallo\r\n\n  \nthe night \t die Nacht\n\t\nend\t\n"
                  + "你好\tこんにちは\n".encode())
    corpus = read_pairs(path, "en", "de")
    assert corpus.pairs == [("hello", "hallo"), ("the night", "die Nacht"), ("你好", "こんにちは")]
    assert (corpus.source_language, corpus.target_language) == ("en", "de")
    assert corpus.skipped_empty == 4  # 2 blank lines, a line of tabs, a pair with no target
    assert "3 pairs, 4 empty lines or pairs skipped" in corpus.describe()


def test_tsv_without_languages_records_none(tmp_path: Path) -> None:
    corpus = read_pairs(_write(tmp_path, "p.tsv", "a\tb\n"))
    assert (corpus.source_language, corpus.target_language, corpus.skipped_empty) == ("", "", 0)


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("cols.tsv", b"a\tb\nc\td\te\n", r"cols.tsv:2: expected 2 tab-separated columns "
                                         r"\(source<TAB>target\), found 3"),
        ("one.tsv", b"a\tb\nc d\n", r"one.tsv:2: expected 2 tab-separated columns .*found 1"),
        ("mixed.tsv", "caf\u00e9\tcafe\n".encode() + "na\u00efve\tnaiv\n".encode("latin-1"),
         r"mixed.tsv:2: not UTF-8 \(byte 0xef at column 3\); the file mixes encodings\? "
         r"convert it to UTF-8"),
        ("empty.tsv", b"", r"empty.tsv: the file is empty"),
        ("blank.tsv", b"\xef\xbb\xbf\n \n\t\n", r"blank.tsv: the file is empty"),
        ("only-empty-pairs.tsv", b"a\t\n\tb\n", r"no usable sentence pairs"),
        ("nul.tsv", b"a\tb\nc\x00\td\n", r"nul.tsv:2: NUL byte"),
        ("utf16.tsv", "a\tb\n".encode("utf-16"), r"utf16.tsv: UTF-16 text; save the TSV as UTF-8"),
    ],
)
def test_bad_tsv_gives_one_line_naming_file_and_line(tmp_path: Path, name: str, data: bytes,
                                                     message: str) -> None:
    with pytest.raises(ConfigError, match=message) as error:
        read_pairs(_write(tmp_path, name, data))
    assert "\n" not in str(error.value)
    assert str(tmp_path / name) in str(error.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope.tsv: file not found"):
        read_pairs(tmp_path / "nope.tsv")


@pytest.mark.parametrize(("src", "tgt", "message"), [
    ("english", "de", r"--src 'english' is not a BCP-47 language tag"),
    ("en", "d e", r"--tgt 'd e' is not a BCP-47"),
    ("en", "EN", r"--src and --tgt are both en"),
])
def test_bad_language_options(tmp_path: Path, src: str, tgt: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        read_pairs(_write(tmp_path, "p.tsv", "a\tb\n"), src, tgt)


def test_tags_are_normalized() -> None:
    assert normalize_tag("ZH_hant_tw", "--src") == "zh-Hant-TW"
    assert normalize_tag("pt-br", "--src") == "pt-BR"
    assert normalize_tag("es-419", "--src") == "es-419"


# TMX -------------------------------------------------------------------------------------------


def test_tmx_pairs_by_language(tmp_path: Path) -> None:
    body = "\n".join([
        _tu(en_US="Hello <bpt i='1'>&lt;b&gt;</bpt>world<ept i='1'>&lt;/b&gt;</ept>",
            DE_de="Hallo Welt", fr="Bonjour le monde"),
        _tu(en_US="Only English"),
        _tu(en_US="Two\n   lines &amp; more", de_DE="Zwei Zeilen"),
        _tu(en_US="  ", de_DE="leer"),
    ])
    prolog = TMX_HEAD + '<!DOCTYPE tmx SYSTEM "tmx14.dtd">\n'  # as translation tools write it
    path = _write(tmp_path, "memory.tmx", _tmx(body, prolog=prolog))
    corpus = read_pairs(path, "en", "de")
    assert corpus.pairs == [("Hello world", "Hallo Welt"), ("Two lines & more", "Zwei Zeilen")]
    assert (corpus.skipped_incomplete, corpus.skipped_empty) == (1, 1)
    assert (corpus.source_language, corpus.target_language) == ("en", "de")
    french = read_pairs(path, "fr", "en-US")
    assert french.pairs == [("Bonjour le monde", "Hello world")]
    assert (french.source_language, french.target_language) == ("fr", "en-US")


def test_tmx_languages_default_to_header_and_the_other_one(tmp_path: Path) -> None:
    path = _write(tmp_path, "two.tmx", _tmx(_tu(en_US="cat", de_DE="Katze")))
    corpus = read_pairs(path)
    assert (corpus.source_language, corpus.target_language) == ("en-US", "de-DE")
    assert corpus.pairs == [("cat", "Katze")]
    reverse = read_pairs(path, None, "en-US")
    assert (reverse.source_language, reverse.pairs) == ("de-DE", [("Katze", "cat")])


def test_tmx_in_utf16_and_by_content_without_suffix(tmp_path: Path) -> None:
    text = _tmx(_tu(en="cat", de="Katze")).replace("UTF-8", "UTF-16")
    assert read_pairs(_write(tmp_path, "u16.tmx", text.encode("utf-16")), "en", "de").pairs == \
        [("cat", "Katze")]
    plain = _tmx(_tu(en="dog", de="Hund"))
    assert read_pairs(_write(tmp_path, "memory.xml", plain), "en", "de").pairs == \
        [("dog", "Hund")]


@pytest.mark.parametrize(
    ("data", "src", "tgt", "message"),
    [
        (_tmx(_tu(en="a", de="b")).replace("</seg></tuv></tu>", "</tuv></tu>", 1), "en", "de",
         r"bad.tmx:4: corrupt TMX \(mismatched tag at column \d+\)"),
        (TMX_HEAD + "<tmx><body><tu><tuv xml:lang='en'><seg>a", "en", "de",
         r"bad.tmx:2: corrupt TMX \(no element found"),
        (b"\x00\x01binary", "en", "de", r"bad.tmx:1: corrupt TMX"),
        (_tmx(_tu(en="a &ent; b", de="b")), "en", "de",
         r"bad.tmx:4: corrupt TMX \(undefined entity"),
        (TMX_HEAD + '<!DOCTYPE tmx [<!ENTITY lol "lol">]>\n<tmx><body>'
         + _tu(en="&lol;", de="x") + "</body></tmx>", "en", "de",
         r"bad.tmx:2: the TMX declares an internal DTD subset .*refuses \(unsafe XML\)"),
        (TMX_HEAD + '<!DOCTYPE tmx SYSTEM "tmx14.dtd" [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
         + "<tmx/>", "en", "de", r"refuses \(unsafe XML\)"),
        (_tmx(_tu(en="a", de="b")), "en", "fr",
         r"bad.tmx: language 'fr' \(--tgt\) is not in this TMX \(languages found: en, de\)"),
        (_tmx(_tu(en="a", de="b")), "ja", "de", r"language 'ja' \(--src\) is not in this TMX"),
        (_tmx(_tu(en="a", de="b", fr="c"), header="<header/>"), None, None,
         r"bad.tmx: pass --src and --tgt to choose the languages \(languages found: en, de, fr\)"),
        (_tmx(""), "en", "de", r"bad.tmx: the TMX has no translation units"),
        (TMX_HEAD + "<html><body/></html>", "en", "de",
         r"bad.tmx:2: not a TMX file \(the root element is <html>, expected <tmx>\)"),
        (_tmx("<tu><tuv><seg>a</seg></tuv></tu>"), "en", "de",
         r"bad.tmx:4: <tuv> without xml:lang"),
        (_tmx(_tu(en="a") + _tu(de="b")), "en", "de", r"no usable sentence pairs"),
    ],
)
def test_bad_tmx_gives_one_line_naming_the_file(tmp_path: Path, data: str | bytes,
                                                src: str | None, tgt: str | None,
                                                message: str) -> None:
    with pytest.raises(ConfigError, match=message) as error:
        read_pairs(_write(tmp_path, "bad.tmx", data), src, tgt)
    assert "\n" not in str(error.value)
    assert str(tmp_path / "bad.tmx") in str(error.value)


def test_billion_laughs_is_refused_before_expansion(tmp_path: Path) -> None:
    entities = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    data = (f'{TMX_HEAD}<!DOCTYPE tmx [<!ENTITY l0 "lol">{entities}]>\n<tmx><body>'
            f'{_tu(en="&l9;", de="x")}</body></tmx>')
    with pytest.raises(ConfigError, match="unsafe XML"):
        read_pairs(_write(tmp_path, "bomb.tmx", data), "en", "de")


# Split and metrics -----------------------------------------------------------------------------


def test_split_is_seeded_disjoint_and_capped() -> None:
    train, held_out = split_pairs(1000, seed=7)
    assert len(held_out) == 50 and len(train) == 950
    assert sorted(train + held_out) == list(range(1000))
    assert split_pairs(1000, seed=7) == (train, held_out)
    assert split_pairs(1000, seed=8)[1] != held_out
    assert len(split_pairs(100_000, seed=7)[1]) == 1000  # capped
    assert split_pairs(2, seed=0)[0] and split_pairs(2, seed=0)[1]  # one each
    with pytest.raises(ConfigError, match="only 1 sentence pair"):
        split_pairs(1, seed=0)


def test_bleu_tokenizer_by_target_language() -> None:
    assert [bleu_tokenizer(t) for t in ("", "de", "zh-Hans", "ja", "ko", "th-TH")] == \
        ["13a", "13a", "zh", "char", "13a", "char"]


def test_scores() -> None:
    perfect = score(["the cat sat on the mat"], ["the cat sat on the mat"])
    assert perfect.bleu == pytest.approx(100) and perfect.chrf == pytest.approx(100)
    partial = score(["the cat sat on a mat"], ["the cat sat on the mat"])
    assert 0 < partial.bleu < 100 and 0 < partial.chrf < 100
    assert score(["猫坐在垫子上"], ["猫坐在垫子上"], "zh").bleu == pytest.approx(100)
    with pytest.raises(ValueError, match="as many hypotheses as references"):
        score(["a"], [])
