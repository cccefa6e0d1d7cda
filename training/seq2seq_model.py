"""The encoder-decoder Transformer for translation, in PyTorch (transformers' Marian family).

Parameter names are exactly ``MarianMTModel``'s, so one ONNX graph builder serves our own trained
models and imported OPUS-MT checkpoints. ``normalize_before=False`` is Marian's post-norm and
reproduces ``MarianMTModel``'s logits for the same weights; ``normalize_before=True`` (pre-norm,
plus a final LayerNorm after each stack) is what we train, because it is stable without a long
warm-up. Positions are Marian's fixed sinusoids (sin in the first half of the dims, cos in the
second half), kept as a non-persistent buffer so they never appear in a state dict.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from convert.seq2seq_config import Seq2SeqConfig, sinusoidal_positions

KV = tuple[torch.Tensor, torch.Tensor]  # key, value: (B, H, S, hd) each
Activation = Callable[[torch.Tensor], torch.Tensor]
_ACTIVATIONS: dict[str, Activation] = {"swish": F.silu, "gelu": F.gelu, "relu": F.relu}


class Attention(nn.Module):
    """Multi-head attention with biases; keys/values are projected separately so the decoder can
    cache them (self-attention grows by one step, cross-attention is computed once)."""

    def __init__(self, d_model: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.head_dim, self.dropout = heads, d_model // heads, dropout
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.q_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape  # (B, T, D)
        return x.view(batch, length, self.heads, self.head_dim).transpose(1, 2)  # (B, H, T, hd)

    def project_kv(self, states: torch.Tensor) -> KV:
        return self._split(self.k_proj(states)), self._split(self.v_proj(states))

    def forward(self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                mask: torch.Tensor | None = None, causal: bool = False) -> torch.Tensor:
        """x (B, T, D) attends to k, v (B, H, S, hd); mask is boolean, True = may attend."""
        q = self._split(self.q_proj(x))  # (B, H, T, hd)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal,
                                           dropout_p=self.dropout if self.training else 0.0)
        batch, _, length, _ = y.shape
        return self.out_proj(y.transpose(1, 2).reshape(batch, length, -1))  # (B, T, D)


class _Block(nn.Module):
    """What encoder and decoder layers share: the feed-forward sublayer (Marian keeps fc1/fc2
    directly on the layer) and the residual wiring."""

    def __init__(self, config: Seq2SeqConfig, ffn_dim: int, dropout: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(config.d_model, ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, config.d_model)
        self.final_layer_norm = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.act: Activation = _ACTIVATIONS[config.activation]
        self.dropout = dropout
        self.pre = config.normalize_before

    def feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = F.dropout(self.act(self.fc1(x)), self.dropout, self.training)  # (B, T, F)
        return self.fc2(hidden)

    def residual(self, x: torch.Tensor, norm: nn.LayerNorm,
                 sublayer: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """Pre-norm: x + f(norm(x)). Post-norm (Marian): norm(x + f(x))."""
        if self.pre:
            return x + F.dropout(sublayer(norm(x)), self.dropout, self.training)
        return norm(x + F.dropout(sublayer(x), self.dropout, self.training))


class EncoderLayer(_Block):
    def __init__(self, config: Seq2SeqConfig, dropout: float) -> None:
        super().__init__(config, config.encoder_ffn_dim, dropout)
        self.self_attn = Attention(config.d_model, config.encoder_attention_heads, dropout)
        self.self_attn_layer_norm = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        def attend(h: torch.Tensor) -> torch.Tensor:
            return self.self_attn(h, *self.self_attn.project_kv(h), mask=mask)

        x = self.residual(x, self.self_attn_layer_norm, attend)  # (B, S, D)
        return self.residual(x, self.final_layer_norm, self.feed_forward)


class DecoderLayer(_Block):
    def __init__(self, config: Seq2SeqConfig, dropout: float) -> None:
        super().__init__(config, config.decoder_ffn_dim, dropout)
        d, eps, heads = config.d_model, config.layer_norm_eps, config.decoder_attention_heads
        self.self_attn = Attention(d, heads, dropout)
        self.self_attn_layer_norm = nn.LayerNorm(d, eps=eps)
        self.encoder_attn = Attention(d, heads, dropout)
        self.encoder_attn_layer_norm = nn.LayerNorm(d, eps=eps)

    def forward(self, x: torch.Tensor, cross: KV, encoder_mask: torch.Tensor,
                past: KV | None) -> tuple[torch.Tensor, KV]:
        """x (B, T, D) at positions P..P+T-1, past (B, H, P, hd) or None; returns the new
        hidden states and the self-attention cache (B, H, P+T, hd)."""
        present: list[KV] = []

        def attend_self(h: torch.Tensor) -> torch.Tensor:
            k, v = self.self_attn.project_kv(h)
            if past is not None:
                k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
            present.append((k, v))
            length, total = h.shape[1], k.shape[2]
            if length == total:  # no cache: plain causal attention
                return self.self_attn(h, k, v, causal=length > 1)
            # New queries sit at the end: query i may see keys 0 .. total - length + i.
            mask = torch.ones(length, total, dtype=torch.bool, device=h.device)
            return self.self_attn(h, k, v, mask=mask.tril(total - length))

        def attend_source(h: torch.Tensor) -> torch.Tensor:
            return self.encoder_attn(h, *cross, mask=encoder_mask)

        x = self.residual(x, self.self_attn_layer_norm, attend_self)  # (B, T, D)
        x = self.residual(x, self.encoder_attn_layer_norm, attend_source)
        return self.residual(x, self.final_layer_norm, self.feed_forward), present[0]


class Stack(nn.Module):
    """Token embedding (scaled) + sinusoidal positions + layers (+ final norm when pre-norm)."""

    embed_positions: torch.Tensor

    def __init__(self, config: Seq2SeqConfig, embed_tokens: nn.Embedding, layers: nn.ModuleList,
                 positions: torch.Tensor) -> None:
        super().__init__()
        self.embed_tokens = embed_tokens
        self.register_buffer("embed_positions", positions, persistent=False)  # (P_max, D)
        self.layers = layers
        self.layer_norm = (nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
                           if config.normalize_before else None)
        self.embed_scale = math.sqrt(config.d_model) if config.scale_embedding else 1.0

    def embed(self, ids: torch.Tensor, start: int, dropout: float) -> torch.Tensor:
        length = ids.shape[1]
        if start + length > self.embed_positions.shape[0]:
            raise ValueError(f"sequence of {start + length} tokens exceeds "
                             f"max_position_embeddings {self.embed_positions.shape[0]}")
        x = self.embed_tokens(ids) * self.embed_scale  # (B, T, D)
        x = x + self.embed_positions[start:start + length]
        return F.dropout(x, dropout, self.training)

    def finish(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.layer_norm is None else self.layer_norm(x)


class MarianCore(nn.Module):
    """Holds ``shared``, ``encoder`` and ``decoder`` so the names carry Marian's ``model.``."""

    def __init__(self, config: Seq2SeqConfig, dropout: float) -> None:
        super().__init__()
        d, vocab, pad = config.d_model, config.vocab_size, config.pad_token_id
        positions = torch.from_numpy(sinusoidal_positions(config.max_position_embeddings, d))
        if config.share_embeddings:
            self.shared = nn.Embedding(vocab, d, padding_idx=pad)
            source_embed, target_embed = self.shared, self.shared
        else:
            source_embed = nn.Embedding(vocab, d, padding_idx=pad)
            target_embed = nn.Embedding(vocab, d, padding_idx=pad)
        encoder_layers = nn.ModuleList(EncoderLayer(config, dropout)
                                       for _ in range(config.encoder_layers))
        decoder_layers = nn.ModuleList(DecoderLayer(config, dropout)
                                       for _ in range(config.decoder_layers))
        self.encoder = Stack(config, source_embed, encoder_layers, positions)
        self.decoder = Stack(config, target_embed, decoder_layers, positions.clone())


class Seq2SeqModel(nn.Module):
    """Source ids (B, S) + mask (B, S) + decoder input ids (B, T) -> logits (B, T, V)."""

    def __init__(self, config: Seq2SeqConfig, dropout: float = 0.0) -> None:
        super().__init__()
        config.validate()
        self.config, self.dropout = config, dropout
        self.model = MarianCore(config, dropout)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        if config.share_embeddings:
            self.lm_head.weight = self.model.shared.weight
        if config.final_logits_bias:
            self.register_buffer("final_logits_bias", torch.zeros(1, config.vocab_size))
        else:
            self.final_logits_bias = None
        self._init_weights()

    def _init_weights(self) -> None:
        d = self.config.d_model
        # Scaled embeddings start at unit variance, like the sinusoids they are added to.
        embed_std = d ** -0.5 if self.config.scale_embedding else 0.02
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, std=embed_std)
                with torch.no_grad():
                    module.weight[self.config.pad_token_id].zero_()
        if self.config.share_embeddings:  # the Linear loop above re-drew the tied matrix
            nn.init.normal_(self.model.shared.weight, std=embed_std)
            with torch.no_grad():
                self.model.shared.weight[self.config.pad_token_id].zero_()

    # Encoder ----------------------------------------------------------------------------------

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """input_ids, attention_mask (B, S), 1 = token -> encoder states (B, S, D)."""
        encoder = self.model.encoder
        x = encoder.embed(input_ids, 0, self.dropout)
        mask = self.source_mask(attention_mask)
        for layer in encoder.layers:
            x = layer(x, mask)
        return encoder.finish(x)

    @staticmethod
    def source_mask(attention_mask: torch.Tensor) -> torch.Tensor:
        return attention_mask.bool()[:, None, None, :]  # (B, 1, 1, S): keys that may be seen

    # Decoder ----------------------------------------------------------------------------------

    def cross_kv(self, encoder_states: torch.Tensor) -> list[KV]:
        """Each decoder layer's encoder_attn keys/values (B, H, S, hd), computed once."""
        return [cast(DecoderLayer, layer).encoder_attn.project_kv(encoder_states)
                for layer in self.model.decoder.layers]

    def decode(self, decoder_input_ids: torch.Tensor, cross: list[KV],
               attention_mask: torch.Tensor, past: Sequence[KV] | None = None,
               ) -> tuple[torch.Tensor, list[KV]]:
        """Decoder ids (B, T) after ``past`` (P cached steps) -> logits (B, T, V), cache."""
        decoder = self.model.decoder
        start = 0 if past is None else past[0][0].shape[2]
        x = decoder.embed(decoder_input_ids, start, self.dropout)
        mask = self.source_mask(attention_mask)
        present = []
        for index, layer in enumerate(decoder.layers):
            x, cache = layer(x, cross[index], mask, None if past is None else past[index])
            present.append(cache)
        logits = self.lm_head(decoder.finish(x))  # (B, T, V)
        if self.final_logits_bias is not None:
            logits = logits + self.final_logits_bias
        return logits, present

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                decoder_input_ids: torch.Tensor) -> torch.Tensor:
        memory = self.encode(input_ids, attention_mask)
        return self.decode(decoder_input_ids, self.cross_kv(memory), attention_mask)[0]

    def marian_state_dict(self) -> dict[str, torch.Tensor]:
        """Every Marian name (tied ones repeated), as the ONNX graph builder expects."""
        return {name: tensor.detach() for name, tensor in self.state_dict().items()}


@torch.no_grad()
def greedy_decode(model: Seq2SeqModel, sources: Sequence[Sequence[int]],
                  max_new_tokens: Sequence[int]) -> list[list[int]]:
    """Greedy translation of a batch of source id lists (each ending with eos).

    Uses the same cache layout as the ONNX decoder: cross K/V once, self K/V growing by a step.
    The pad token is never generated (Marian's ``bad_words_ids``), as in the engine's search.
    ``max_new_tokens`` counts the ids returned per sentence, without the start token and
    without the eos that ended them.
    """
    config, device = model.config, next(model.parameters()).device
    was_training = model.training
    model.eval()
    width = max(len(s) for s in sources)
    ids = torch.full((len(sources), width), config.pad_token_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, source in enumerate(sources):
        ids[row, :len(source)] = torch.tensor(list(source))
        mask[row, :len(source)] = 1
    ids, mask = ids.to(device), mask.to(device)
    cross = model.cross_kv(model.encode(ids, mask))
    limits = torch.tensor(list(max_new_tokens), device=device)
    step_ids = torch.full((len(sources), 1), config.decoder_start_token_id, device=device)
    done = limits <= 0
    out: list[list[int]] = [[] for _ in sources]
    past: list[KV] | None = None
    for step in range(int(limits.max().item()) if len(sources) else 0):
        logits, past = model.decode(step_ids, cross, mask, past)
        scores = logits[:, -1].float()  # (B, V)
        if config.pad_token_id != config.eos_token_id:
            scores[:, config.pad_token_id] = -torch.inf
        next_ids = scores.argmax(-1)  # (B,)
        for row in (~done).nonzero().flatten().tolist():
            if int(next_ids[row]) == config.eos_token_id:
                done[row] = True
            else:
                out[row].append(int(next_ids[row]))
        done |= limits <= step + 1
        if bool(done.all()):
            break
        step_ids = next_ids[:, None]
    model.train(was_training)
    return out
