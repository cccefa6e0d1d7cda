"""Tests for building a tokenizer from GGUF tokenizer metadata (convert/importers/gguf_tokenizer).

Byte-level BPE (``gpt2``): a small vocabulary is trained here, wrapped in each variant's published
Hugging Face pre-tokenizer as the reference, exported the way llama.cpp's converter writes it
(tokens, token types, merges), rebuilt, and compared id for id on a table of tricky strings.

SentencePiece (``llama``): a vocabulary is exported with scores as llama.cpp's converter writes
them, and the rebuilt tokenizer is compared with a line-by-line Python port of llama.cpp's
SPM tokenizer (``llm_tokenizer_spm_session``), and, where the sentencepiece package is installed,
with a real SentencePiece model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from itertools import pairwise
from typing import Any

import pytest
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
from tokenizers.trainers import BpeTrainer

from convert.importers.gguf_tokenizer import (
    SUPPORTED_PRE_TOKENIZERS,
    adds_bos_token,
    build_tokenizer,
    special_token_strings,
    stop_token_strings,
)

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, BYTE = 1, 2, 3, 4, 6
SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")

TRICKY = (
    "Hello world", " leading space", "   three leading spaces", "multiple   inner    spaces",
    "trailing   ", "line one\nline two\n\n\nline five", "\n", "\n\n", " \n \n",
    "tabs\tand\t\tmore\t",
    "windows\r\nline\r\n", "12345", "3.14159 and 2024-11-28", "x = 1234567890",
    "don't won't I'M HE'S we'll they've", "你好，世界！", "日本語のテキストです。",
    "emoji 😀 and 👍🏽 and 🇺🇳", "𝄞 clef", "café naïve façade",
    "<|im_start|>user\nHi there<|im_end|>\n", "end<|endoftext|>start", "<think>hmm</think> ok",
    "def f(x):\n    return x ** 2  # square\n", "if (a != b) { c += 1; }", "", " ", "A",
)
CORPUS = [
    "The quick brown fox jumps over the lazy dog. Don't panic, we'll see; they've gone.",
    "In 2024 the price rose 12345 times to 3.14159 and then fell on 2024-11-28 at 10:30.",
    "    def forward(self, x):\n        return self.proj(x) ** 2  # the square\n",
    "if (a != b) { c += 1; } else { return 1234567890; }\n\n\n",
    "你好，世界！这是一个测试。日本語のテキストです。", "café naïve façade résumé",
    "emoji 😀 and 👍 are fun", "line one\nline two\r\n\tindented\t\ttabs",
    "  spaced   out   text  ",
] * 20

# The pre-tokenizers of the published tokenizer.json files (GPT-2, Llama 3, Qwen2, SmolLM2).
_HF_LLAMA3 = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_HF_QWEN2 = _HF_LLAMA3.replace(r"\p{N}{1,3}", r"\p{N}")


def _hf_pre_tokenizer(variant: str) -> pre_tokenizers.PreTokenizer:
    if variant in ("default", "gpt2"):
        return pre_tokenizers.ByteLevel(add_prefix_space=False)
    if variant in ("smollm", "starcoder"):
        return pre_tokenizers.Sequence(
            [pre_tokenizers.Digits(individual_digits=True),
             pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]
        )
    pattern = {"llama-bpe": _HF_LLAMA3, "qwen2": _HF_QWEN2}[variant]
    return pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(pattern), behavior="isolated"),
         pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]
    )


@cache
def _base_bpe() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Vocab and merges learned on whole lines, so merges cross every variant's split points."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    trainer = BpeTrainer(vocab_size=900, special_tokens=list(SPECIALS), show_progress=False,
                         initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(CORPUS, trainer=trainer)
    model = json.loads(tokenizer.to_str())["model"]
    return model["vocab"], [tuple(m) for m in model["merges"]]


@cache
def _byte_level_reference(variant: str) -> Tokenizer:
    vocab, merges = _base_bpe()
    reference = Tokenizer(models.BPE(vocab=vocab, merges=merges,
                                     ignore_merges=variant == "llama-bpe"))
    reference.pre_tokenizer = _hf_pre_tokenizer(variant)
    reference.decoder = decoders.ByteLevel()
    reference.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIALS])
    reference.add_tokens([AddedToken("<think>", special=False, normalized=False)])
    return reference


def _byte_level_metadata(variant: str) -> dict[str, Any]:
    """What llama.cpp's converter writes for the reference tokenizer."""
    reference = _byte_level_reference(variant)
    tokens = [reference.id_to_token(i) for i in range(reference.get_vocab_size())]
    kinds = dict.fromkeys(SPECIALS, CONTROL) | {"<think>": USER_DEFINED}
    return {
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.pre": variant,
        "tokenizer.ggml.tokens": tokens,
        "tokenizer.ggml.token_type": [kinds.get(t, NORMAL) for t in tokens],
        "tokenizer.ggml.merges": [f"{a} {b}" for a, b in _base_bpe()[1]],
        "tokenizer.ggml.bos_token_id": tokens.index("<|im_start|>"),
        "tokenizer.ggml.eos_token_id": tokens.index("<|im_end|>"),
        "tokenizer.ggml.add_bos_token": False,
    }


BYTE_LEVEL_VARIANTS = ("default", "gpt2", "llama-bpe", "qwen2", "smollm", "starcoder")


@pytest.mark.parametrize("variant", BYTE_LEVEL_VARIANTS)
def test_byte_level_matches_reference(variant: str) -> None:
    reference = _byte_level_reference(variant)
    built = build_tokenizer(_byte_level_metadata(variant))
    # The model folder stores tokenizer.json, so check the serialized form too.
    reloaded = Tokenizer.from_str(built.to_str())
    assert built.get_vocab_size() == reference.get_vocab_size()  # no ids were added
    for text in TRICKY:
        want = reference.encode(text, add_special_tokens=False).ids
        for tokenizer in (built, reloaded):
            ids = tokenizer.encode(text, add_special_tokens=False).ids
            assert ids == want, (variant, text)
            assert tokenizer.decode(ids, skip_special_tokens=False) == text
            assert tokenizer.decode(ids) == reference.decode(ids)


@pytest.mark.parametrize(("variant", "other"), [
    ("gpt2", "llama-bpe"), ("llama-bpe", "qwen2"), ("qwen2", "smollm"), ("smollm", "gpt2"),
])
def test_the_table_tells_variants_apart(variant: str, other: str) -> None:
    # Guards the test above: a wrong pre-tokenizer must show up on some string of the table.
    built = build_tokenizer(_byte_level_metadata(other))
    reference = _byte_level_reference(variant)
    assert any(built.encode(t).ids != reference.encode(t).ids for t in TRICKY)


@pytest.mark.parametrize(("variant", "text", "pieces"), [
    ("gpt2", " 2024-11-28", ["Ġ2024", "-", "11", "-", "28"]),
    ("smollm", " 2024-11-28", ["Ġ", "2", "0", "2", "4", "-", "1", "1", "-", "2", "8"]),
    ("llama-bpe", "12345 don't", ["123", "45", "Ġdon", "'t"]),
    ("llama-bpe", "  hi\n\nthere", ["Ġ", "Ġhi", "ĊĊ", "there"]),
    ("qwen2", "12345", ["1", "2", "3", "4", "5"]),
    ("gpt2", "a  b", ["a", "Ġ", "Ġb"]),
])
def test_pre_tokenizer_splits_like_llama_cpp(variant: str, text: str, pieces: list[str]) -> None:
    # Expected pieces worked out by hand from llama.cpp's regexes for each variant.
    built = build_tokenizer(_byte_level_metadata(variant))
    assert built.pre_tokenizer is not None
    assert [p for p, _ in built.pre_tokenizer.pre_tokenize_str(text)] == pieces


@pytest.mark.parametrize(("variant", "pieces"), [("llama-bpe", ["abc"]), ("qwen2", ["a", "bc"])])
def test_llama3_takes_a_word_that_is_a_token_whole(variant: str, pieces: list[str]) -> None:
    # llama.cpp sets ignore_merges for the Llama 3 family only: "abc" is a token, though no merge
    # makes it ("b c" fires first and nothing joins "a" to "bc").
    metadata = _vocab_metadata(["a", "b", "c", "ab", "bc", "abc"], [NORMAL] * 6)
    metadata |= {"tokenizer.ggml.pre": variant, "tokenizer.ggml.merges": ["b c", "a b"]}
    assert build_tokenizer(metadata).encode("abc").tokens == pieces


def test_byte_level_added_tokens_keep_their_ids() -> None:
    metadata = _byte_level_metadata("qwen2")
    tokens = metadata["tokenizer.ggml.tokens"]
    built = build_tokenizer(metadata)
    ids = built.encode("<|im_start|>user\n<think>x<|im_end|>", add_special_tokens=False).ids
    assert ids[0] == tokens.index("<|im_start|>")
    assert tokens.index("<think>") in ids
    assert ids[-1] == tokens.index("<|im_end|>")
    # The engine decodes with skip_special_tokens: control tokens vanish, user-defined stay.
    assert built.decode(ids) == "user\n<think>x"
    assert [built.id_to_token(i) for i in range(len(tokens))] == tokens


# --- SentencePiece ("llama") -------------------------------------------------------------------

SPM_SPECIALS = ("<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>", "<think>")
SPM_KINDS = (UNKNOWN, CONTROL, CONTROL, CONTROL, CONTROL, USER_DEFINED)


@cache
def _spm_metadata(add_space_prefix: bool = True) -> dict[str, Any]:
    """A Llama-2-shaped vocabulary: specials, 256 byte tokens, then pieces best-first.

    Pieces are learned by `tokenizers` on ▁-escaped lines. Scores follow SentencePiece's BPE
    export: the piece made by merge k scores -k, single characters score below every merge,
    special and byte tokens score 0.
    """
    learner = Tokenizer(models.BPE())
    learner.normalizer = normalizers.Sequence(
        [normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    # limit_alphabet leaves rare characters (most CJK) to byte fallback.
    trainer = BpeTrainer(vocab_size=500, limit_alphabet=60, show_progress=False)
    learner.train_from_iterator(CORPUS, trainer=trainer)
    model = json.loads(learner.to_str())["model"]
    merged = {a + b: -rank for rank, (a, b) in enumerate(model["merges"])}
    pieces = sorted(model["vocab"], key=model["vocab"].get)
    lowest = -len(merged) - 1
    tokens = [*SPM_SPECIALS, *(f"<0x{b:02X}>" for b in range(256)), *pieces]
    return {
        "tokenizer.ggml.model": "llama",
        "tokenizer.ggml.tokens": tokens,
        "tokenizer.ggml.scores": [0.0] * (len(SPM_SPECIALS) + 256)
        + [float(merged.get(p, lowest - i)) for i, p in enumerate(pieces)],
        "tokenizer.ggml.token_type": [*SPM_KINDS, *[BYTE] * 256, *[NORMAL] * len(pieces)],
        "tokenizer.ggml.unknown_token_id": 0,
        "tokenizer.ggml.bos_token_id": 1,
        "tokenizer.ggml.eos_token_id": 2,
        "tokenizer.ggml.add_space_prefix": add_space_prefix,
    }


def _split_on_specials(text: str, specials: Sequence[str]) -> list[str]:
    """llama.cpp's tokenizer_st_partition: longest special first, each splits every fragment."""
    fragments = [text]
    for special in sorted(specials, key=len, reverse=True):
        out: list[str] = []
        for fragment in fragments:
            if fragment in specials:
                out.append(fragment)
                continue
            parts = fragment.split(special)
            for i, part in enumerate(parts):
                out.extend(([special] if i else []) + ([part] if part else []))
        fragments = out
    return fragments


def _llama_cpp_spm(metadata: dict[str, Any], text: str) -> list[int]:
    """A direct port of llama.cpp's SPM tokenize (parse_special=true, no BOS)."""
    tokens, scores = metadata["tokenizer.ggml.tokens"], metadata["tokenizer.ggml.scores"]
    kinds = metadata["tokenizer.ggml.token_type"]
    ids = {t: i for i, t in enumerate(tokens)}
    added = (UNKNOWN, CONTROL, USER_DEFINED)
    specials = [t for t, k in zip(tokens, kinds, strict=True) if k in added]
    out: list[int] = []
    for fragment in _split_on_specials(text, specials):
        if fragment in specials:
            out.append(ids[fragment])
            continue
        prefix = "▁" if metadata["tokenizer.ggml.add_space_prefix"] else ""
        symbols = list(prefix + fragment.replace(" ", "▁"))
        while True:  # merge the pair whose join scores best, leftmost on ties
            pairs = [(scores[ids[a + b]], -i) for i, (a, b) in enumerate(pairwise(symbols))
                     if a + b in ids]
            if not pairs:
                break
            i = -max(pairs)[1]
            symbols[i : i + 2] = [symbols[i] + symbols[i + 1]]
        for symbol in symbols:
            out.extend([ids[symbol]] if symbol in ids
                       else [ids[f"<0x{b:02X}>"] for b in symbol.encode("utf-8")])
    return out


@pytest.mark.parametrize("add_space_prefix", [True, False])
def test_sentencepiece_matches_llama_cpp(add_space_prefix: bool) -> None:
    metadata = _spm_metadata(add_space_prefix)
    built = build_tokenizer(metadata)
    reloaded = Tokenizer.from_str(built.to_str())
    for text in TRICKY:
        want = _llama_cpp_spm(metadata, text)
        assert built.encode(text, add_special_tokens=False).ids == want, text
        assert reloaded.encode(text, add_special_tokens=False).ids == want, text
        if not any(s in text for s in SPM_SPECIALS):
            assert built.decode(want) == text


def test_sentencepiece_properties() -> None:
    built = build_tokenizer(_spm_metadata())
    clef = built.encode("𝄞", add_special_tokens=False).tokens
    assert clef == ["▁", "<0xF0>", "<0x9D>", "<0x84>", "<0x9E>"]  # byte fallback, never <unk>
    assert built.encode("Hello").tokens[0].startswith("▁")
    assert "".join(built.encode(" Hello").tokens).startswith("▁▁")  # the text's own space stays
    ids = built.encode("<s>Hi</s>", add_special_tokens=False).ids
    assert ids[0] == 1 and ids[-1] == 2
    assert built.decode(ids) == "Hi"
    no_prefix = build_tokenizer(_spm_metadata(add_space_prefix=False))
    assert not no_prefix.encode("Hello").tokens[0].startswith("▁")


def test_sentencepiece_matches_real_sentencepiece(tmp_path: Any) -> None:
    spm = pytest.importorskip("sentencepiece")
    prefix = str(tmp_path / "spm")
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS), model_prefix=prefix, vocab_size=400, model_type="bpe",
        byte_fallback=True, character_coverage=0.98, normalization_rule_name="identity",
        add_dummy_prefix=True, remove_extra_whitespaces=False, split_digits=True,
        allow_whitespace_only_pieces=True, control_symbols=["<|im_start|>", "<|im_end|>"],
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, hard_vocab_limit=False, minloglevel=2,
    )
    sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
    size = sp.get_piece_size()

    def kind(i: int) -> int:  # as llama.cpp's convert_hf_to_gguf.py types SentencePiece pieces
        return (UNKNOWN if sp.is_unknown(i) else CONTROL if sp.is_control(i)
                else BYTE if sp.is_byte(i) else NORMAL)

    tokens = [sp.id_to_piece(i) for i in range(size)]
    metadata = {
        "tokenizer.ggml.model": "llama",
        "tokenizer.ggml.tokens": tokens,
        "tokenizer.ggml.scores": [sp.get_score(i) for i in range(size)],
        "tokenizer.ggml.token_type": [kind(i) for i in range(size)],
        "tokenizer.ggml.unknown_token_id": 0,
    }
    built = build_tokenizer(metadata)
    controls = ["<s>", "</s>", "<|im_start|>", "<|im_end|>"]
    for text in TRICKY:
        # SentencePiece itself does not see control tokens in text; llama.cpp splits them out
        # and encodes each stretch between them on its own, which is what we do here.
        want: list[int] = []
        for fragment in _split_on_specials(text, controls):
            want += [tokens.index(fragment)] if fragment in controls else sp.encode(fragment)
        assert built.encode(text, add_special_tokens=False).ids == want, text


# --- special and stop tokens -------------------------------------------------------------------

def _vocab_metadata(tokens: list[str], kinds: list[int], **ids: int) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "tokenizer.ggml.model": "gpt2", "tokenizer.ggml.tokens": tokens,
        "tokenizer.ggml.token_type": kinds,
    }
    metadata.update({f"tokenizer.ggml.{key}": value for key, value in ids.items()})
    return metadata


@pytest.mark.parametrize(("metadata", "specials", "stops"), [
    (_vocab_metadata(["<|endoftext|>", "<|im_start|>", "<|im_end|>", "a"], [3, 3, 3, 1],
                     bos_token_id=1, eos_token_id=2, padding_token_id=2, unknown_token_id=0),
     {"bos": "<|im_start|>", "eos": "<|im_end|>", "pad": "<|im_end|>", "unk": "<|endoftext|>"},
     ["<|im_end|>", "<|endoftext|>"]),
    (_vocab_metadata(["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|eom_id|>", "x"],
                     [3, 3, 3, 3, 1], bos_token_id=0, eos_token_id=1),
     {"bos": "<|begin_of_text|>", "eos": "<|end_of_text|>", "pad": None, "unk": None},
     ["<|end_of_text|>", "<|eot_id|>", "<|eom_id|>"]),
    (_vocab_metadata(["<unk>", "<s>", "</s>", "x"], [2, 3, 3, 1],
                     bos_token_id=1, eos_token_id=2, unknown_token_id=0),
     {"bos": "<s>", "eos": "</s>", "pad": None, "unk": "<unk>"}, ["</s>"]),
    (_vocab_metadata(["<pad>", "<eos>", "<bos>", "<end_of_turn>"], [3, 3, 3, 3],
                     bos_token_id=2, eos_token_id=1, padding_token_id=0),
     {"bos": "<bos>", "eos": "<eos>", "pad": "<pad>", "unk": None}, ["<eos>", "<end_of_turn>"]),
    # A plain "</s>" learned from text is not a stop token; a user-defined <|im_end|> is.
    (_vocab_metadata(["</s>", "<|im_end|>", "x"], [1, 4, 1]),
     {"bos": None, "eos": None, "pad": None, "unk": None}, ["<|im_end|>"]),
])
def test_special_and_stop_tokens(
    metadata: dict[str, Any], specials: dict[str, str | None], stops: list[str]
) -> None:
    assert special_token_strings(metadata) == specials
    assert stop_token_strings(metadata) == stops


@pytest.mark.parametrize(("extra", "expected"), [
    ({"tokenizer.ggml.model": "llama"}, True),
    ({"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "llama-bpe"}, True),
    ({"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "smollm"}, False),
    ({"tokenizer.ggml.model": "llama", "tokenizer.ggml.add_bos_token": False}, False),
    ({"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.add_bos_token": True}, True),
])
def test_adds_bos_token_follows_llama_cpp(extra: dict[str, Any], expected: bool) -> None:
    assert adds_bos_token(extra) is expected


# --- errors ------------------------------------------------------------------------------------

def _broken(change: dict[str, Any], drop: str = "", base: str = "gpt2") -> dict[str, Any]:
    metadata = dict(_byte_level_metadata("gpt2") if base == "gpt2" else _spm_metadata())
    metadata.pop(drop, None)
    return metadata | change


@pytest.mark.parametrize(("metadata", "words"), [
    (_broken({}, drop="tokenizer.ggml.model"), ["tokenizer.ggml.model", "missing"]),
    (_broken({"tokenizer.ggml.model": "bert"}), ["tokenizer.ggml.model", "'bert'", "gpt2"]),
    (_broken({}, drop="tokenizer.ggml.tokens"), ["tokenizer.ggml.tokens", "missing"]),
    (_broken({"tokenizer.ggml.token_type": [1, 1]}), ["tokenizer.ggml.token_type", "entries"]),
    (_broken({}, drop="tokenizer.ggml.merges"), ["tokenizer.ggml.merges", "missing"]),
    (_broken({"tokenizer.ggml.merges": ["nosuch token"]}), ["tokenizer.ggml.merges[0]"]),
    (_broken({"tokenizer.ggml.pre": "tekken9"}), ["tokenizer.ggml.pre", "'tekken9'", "qwen2"]),
    (_broken({"tokenizer.ggml.eos_token_id": 10**6}), ["tokenizer.ggml.eos_token_id"]),
    (_broken({"tokenizer.ggml.tokens": ["a", "a"], "tokenizer.ggml.token_type": [1, 1],
              "tokenizer.ggml.bos_token_id": 0, "tokenizer.ggml.eos_token_id": 0}),
     ["tokenizer.ggml.tokens", "twice"]),
    (_broken({}, drop="tokenizer.ggml.scores", base="llama"), ["tokenizer.ggml.scores"]),
    (_broken({"tokenizer.ggml.scores": [0.0]}, base="llama"), ["tokenizer.ggml.scores", "entries"]),
])
def test_bad_metadata_raises_one_line_naming_the_key(
    metadata: dict[str, Any], words: list[str]
) -> None:
    with pytest.raises(ValueError) as caught:
        build_tokenizer(metadata)
    message = str(caught.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_supported_variants_are_listed() -> None:
    assert {"default", "gpt2", "llama-bpe", "qwen2", "smollm", "starcoder"} <= set(
        SUPPORTED_PRE_TOKENIZERS)
