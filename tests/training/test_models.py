"""TransformerLM and LSTMLM against straightforward reference implementations written here.

Like nanoGPT's parity tests: the reference is the textbook formula, computed the slow obvious
way, and the model must match it (allclose logits).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from training.lstm import LSTMLM, LSTMConfig
from training.transformer import (
    Attention,
    RMSNorm,
    TransformerConfig,
    TransformerLM,
    rotary_tables,
)

VOCAB = 61


def _config(**changes: object) -> TransformerConfig:
    base = {"vocab_size": VOCAB, "context_length": 32, "hidden_size": 32, "num_layers": 2,
            "num_heads": 4, "num_kv_heads": 2, "intermediate_size": 48}
    return TransformerConfig(**{**base, **changes})


def _ids(batch: int, length: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, VOCAB, (batch, length), generator=generator)


# Reference implementations -------------------------------------------------------------------


def reference_rope(x: torch.Tensor, positions: torch.Tensor, theta: float) -> torch.Tensor:
    """Rotate-half RoPE from the formula: pairs (i, i + D/2) rotated by pos * theta^(-2i/D)."""
    dim = x.shape[-1]
    half = dim // 2
    out = torch.empty_like(x)
    for i in range(half):
        angle = positions.double() * theta ** (-2.0 * i / dim)  # (T,)
        cos, sin = angle.cos().to(x.dtype), angle.sin().to(x.dtype)
        a, b = x[..., i], x[..., i + half]
        out[..., i] = a * cos - b * sin
        out[..., i + half] = b * cos + a * sin
    return out


def reference_attention(attn: Attention, x: torch.Tensor, config: TransformerConfig,
                        ) -> torch.Tensor:
    """softmax(Q K^T / sqrt(d) + causal mask) V with each kv head repeated over its query group."""
    batch, length, _ = x.shape
    heads, kv_heads, dim = config.num_heads, config.num_kv_heads, config.head_dim
    positions = torch.arange(length)
    q = (x @ attn.q_proj.weight.T).view(batch, length, heads, dim).transpose(1, 2)
    k = (x @ attn.k_proj.weight.T).view(batch, length, kv_heads, dim).transpose(1, 2)
    v = (x @ attn.v_proj.weight.T).view(batch, length, kv_heads, dim).transpose(1, 2)
    q = reference_rope(q, positions, config.rope_theta)
    k = reference_rope(k, positions, config.rope_theta)
    group = heads // kv_heads
    outputs = []
    for head in range(heads):
        kv = head // group  # query head h reads kv head h // group
        scores = q[:, head] @ k[:, kv].transpose(-1, -2) / math.sqrt(dim)  # (B, T, T)
        mask = torch.full((length, length), float("-inf")).triu(1)
        weights = torch.softmax(scores + mask, dim=-1)
        outputs.append(weights @ v[:, kv])  # (B, T, D)
    y = torch.cat(outputs, dim=-1)  # (B, T, H*D), head-major like the model's reshape
    return y @ attn.o_proj.weight.T


# Transformer ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("batch", "length"), [(1, 1), (2, 7), (3, 32)])
def test_transformer_output_shape(batch: int, length: int) -> None:
    model = TransformerLM(_config()).eval()
    assert model(_ids(batch, length)).shape == (batch, length, VOCAB)


def test_transformer_rejects_sequences_longer_than_context() -> None:
    model = TransformerLM(_config(context_length=8))
    with pytest.raises(ValueError, match="exceeds context 8"):
        model(_ids(1, 9))


@pytest.mark.parametrize("kv_heads", [1, 2, 4])
def test_transformer_is_causal(kv_heads: int) -> None:
    torch.manual_seed(0)
    model = TransformerLM(_config(num_kv_heads=kv_heads)).eval()
    ids = _ids(2, 12)
    changed = ids.clone()
    changed[:, 8:] = (changed[:, 8:] + 1) % VOCAB
    with torch.no_grad():
        before, after = model(ids), model(changed)
    torch.testing.assert_close(before[:, :8], after[:, :8], rtol=0, atol=0)
    assert not torch.allclose(before[:, 8:], after[:, 8:])


@pytest.mark.parametrize(("heads", "kv_heads"), [(4, 1), (4, 2), (4, 4)], ids=["mqa", "gqa", "mha"])
def test_transformer_kv_head_layouts(heads: int, kv_heads: int) -> None:
    config = _config(num_heads=heads, num_kv_heads=kv_heads)
    model = TransformerLM(config).eval()
    attn = model.layers[0].self_attn
    assert attn.q_proj.weight.shape == (heads * config.head_dim, config.hidden_size)
    assert attn.k_proj.weight.shape == (kv_heads * config.head_dim, config.hidden_size)
    assert attn.v_proj.weight.shape == (kv_heads * config.head_dim, config.hidden_size)
    logits = model(_ids(2, 5))
    assert logits.shape == (2, 5, VOCAB)
    assert torch.isfinite(logits).all()


def test_tied_embeddings_have_no_head_and_reuse_the_embedding() -> None:
    torch.manual_seed(0)
    model = TransformerLM(_config(tie_embeddings=True)).eval()
    assert model.lm_head is None
    assert not any("lm_head" in name for name, _ in model.named_parameters())
    hidden = {}
    model.norm.register_forward_hook(lambda _m, _i, out: hidden.setdefault("x", out))
    with torch.no_grad():
        logits = model(_ids(2, 6))
    torch.testing.assert_close(logits, hidden["x"] @ model.embed_tokens.weight.T)


def test_untied_embeddings_have_their_own_head() -> None:
    torch.manual_seed(0)
    model = TransformerLM(_config(tie_embeddings=False)).eval()
    names = dict(model.named_parameters())
    assert "lm_head.weight" in names
    assert names["lm_head.weight"].shape == (VOCAB, 32)
    assert names["lm_head.weight"].data_ptr() != names["embed_tokens.weight"].data_ptr()
    hidden = {}
    model.norm.register_forward_hook(lambda _m, _i, out: hidden.setdefault("x", out))
    with torch.no_grad():
        logits = model(_ids(1, 4))
    torch.testing.assert_close(logits, hidden["x"] @ names["lm_head.weight"].T)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"hidden_size": 30, "num_heads": 4}, "hidden_size"),  # 30 / 4 heads
        ({"hidden_size": 36, "num_heads": 4}, "hidden_size"),  # head_dim 9 is odd (RoPE halves)
        ({"num_heads": 4, "num_kv_heads": 3}, "num_kv_heads"),
        ({"num_heads": 6, "num_kv_heads": 4, "hidden_size": 48}, "num_kv_heads"),
    ],
)
def test_bad_transformer_configs_raise(changes: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TransformerLM(_config(**changes))


@pytest.mark.parametrize(("heads", "kv_heads"), [(4, 1), (4, 2), (4, 4), (8, 2)])
def test_attention_matches_reference(heads: int, kv_heads: int) -> None:
    torch.manual_seed(heads * 10 + kv_heads)
    config = _config(hidden_size=64, num_heads=heads, num_kv_heads=kv_heads, rope_theta=500.0)
    attn = Attention(config).eval()
    for layer in (attn.q_proj, attn.k_proj, attn.v_proj, attn.o_proj):
        nn.init.normal_(layer.weight, std=0.3)  # large enough that attention is not uniform
    x = torch.randn(2, 11, 64)
    cos, sin = rotary_tables(torch.arange(11), config.head_dim, config.rope_theta)
    with torch.no_grad():
        got = attn(x, cos, sin)
        expected = reference_attention(attn, x, config)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_rotary_tables_match_reference_rope() -> None:
    x = torch.randn(1, 2, 9, 16)
    positions = torch.arange(9)
    cos, sin = rotary_tables(positions, 16, 10000.0)
    first, second = x.chunk(2, dim=-1)
    rotated = x * cos + torch.cat([-second, first], dim=-1) * sin
    torch.testing.assert_close(rotated, reference_rope(x, positions, 10000.0),
                               rtol=1e-5, atol=1e-5)


def test_rmsnorm_matches_formula() -> None:
    torch.manual_seed(0)
    norm = RMSNorm(16, eps=1e-5)
    with torch.no_grad():
        norm.weight.copy_(torch.linspace(0.5, 2.0, 16))
    x = torch.randn(3, 5, 16) * 4
    expected = torch.empty_like(x)
    for index in torch.cartesian_prod(torch.arange(3), torch.arange(5)).tolist():
        row = x[index[0], index[1]].double()
        rms = math.sqrt(float((row**2).sum()) / 16 + 1e-5)
        expected[index[0], index[1]] = (row / rms).float() * norm.weight.detach()
    torch.testing.assert_close(norm(x), expected, rtol=1e-5, atol=1e-6)


def test_transformer_matches_manual_forward() -> None:
    """The whole model recomputed block by block with the reference attention."""
    torch.manual_seed(3)
    config = _config(num_heads=4, num_kv_heads=2)
    model = TransformerLM(config).eval()
    ids = _ids(2, 10, seed=3)
    with torch.no_grad():
        x = model.embed_tokens.weight[ids]
        for block in model.layers:
            x = x + reference_attention(block.self_attn, block.input_layernorm(x), config)
            h = block.post_attention_layernorm(x)
            mlp = block.mlp
            gate = h @ mlp.gate_proj.weight.T
            swiglu = gate * torch.sigmoid(gate) * (h @ mlp.up_proj.weight.T)
            x = x + swiglu @ mlp.down_proj.weight.T
        expected = model.norm(x) @ model.embed_tokens.weight.T
        got = model(ids)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    assert torch.equal(got.argmax(-1), expected.argmax(-1))


# LSTM ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("batch", "length", "layers"), [(1, 1, 1), (2, 9, 2), (3, 4, 3)])
def test_lstm_output_shape(batch: int, length: int, layers: int) -> None:
    config = LSTMConfig(vocab_size=VOCAB, embed_size=16, hidden_size=24, num_layers=layers)
    assert LSTMLM(config)(_ids(batch, length)).shape == (batch, length, VOCAB)


def test_lstm_matches_manual_run() -> None:
    torch.manual_seed(0)
    config = LSTMConfig(vocab_size=VOCAB, embed_size=16, hidden_size=24, num_layers=2)
    model = LSTMLM(config).eval()
    ids = _ids(2, 9)
    with torch.no_grad():
        # Step by step through a separate nn.LSTM with the same weights, carrying the state.
        lstm = nn.LSTM(16, 24, num_layers=2, batch_first=True)
        lstm.load_state_dict(model.lstm.state_dict())
        state = None
        outputs = []
        for t in range(ids.shape[1]):
            out, state = lstm(model.embed.weight[ids[:, t:t + 1]], state)
            outputs.append(out)
        hidden = torch.cat(outputs, dim=1)  # (B, T, H)
        expected = hidden @ model.proj.weight.T + model.proj.bias
        got = model(ids)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_lstm_cell_formula_for_one_layer() -> None:
    """One layer against the gate equations (input, forget, cell, output order)."""
    torch.manual_seed(1)
    config = LSTMConfig(vocab_size=VOCAB, embed_size=8, hidden_size=6, num_layers=1)
    model = LSTMLM(config).eval()
    ids = _ids(1, 5, seed=1)
    w_ih, w_hh = model.lstm.weight_ih_l0, model.lstm.weight_hh_l0
    bias = model.lstm.bias_ih_l0 + model.lstm.bias_hh_l0
    h, c = torch.zeros(6), torch.zeros(6)
    rows = []
    with torch.no_grad():
        for token in ids[0].tolist():
            gates = w_ih @ model.embed.weight[token] + w_hh @ h + bias
            i, f, g, o = gates.chunk(4)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            rows.append(model.proj(h))
        got = model(ids)[0]
    torch.testing.assert_close(got, torch.stack(rows), rtol=1e-5, atol=1e-6)
