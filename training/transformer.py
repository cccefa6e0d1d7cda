"""A decoder-only Transformer language model of the Llama family.

RMSNorm, rotary position embeddings (rotate-half), SwiGLU MLP, grouped-query attention and tied
input/output embeddings. Parameter names follow Hugging Face's Llama without the ``model.``
prefix so the ONNX builder reads our weights and imported ones the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class TransformerConfig:
    vocab_size: int = 512  # tokens in the tokenizer
    context_length: int = 256  # longest sequence the model is trained and run on
    hidden_size: int = 64  # C: width of the residual stream
    num_layers: int = 2  # number of Transformer blocks
    num_heads: int = 4  # H: query heads
    num_kv_heads: int = 2  # kvH: key/value heads; H must be a multiple (grouped-query attention)
    intermediate_size: int = 176  # width of the SwiGLU MLP
    rope_theta: float = 10000.0  # base of the rotary embedding frequencies
    rms_eps: float = 1e-5  # RMSNorm epsilon
    tie_embeddings: bool = True  # output head shares the embedding matrix
    dropout: float = 0.0  # dropout on attention output and MLP output while training

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    def validate(self) -> None:
        if self.hidden_size % self.num_heads or self.head_dim % 2:
            raise ValueError("hidden_size must split into num_heads heads of an even size")
        if self.num_heads % self.num_kv_heads:
            raise ValueError("num_heads must be a multiple of num_kv_heads")


class RMSNorm(nn.Module):
    def __init__(self, size: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotary_tables(positions: torch.Tensor, head_dim: int, theta: float,
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of shape (T, D) for the given positions (T,)."""
    half = head_dim // 2
    inv_freq = 1.0 / (theta ** (torch.arange(0, half, dtype=torch.float64) / half))
    freqs = positions.to(torch.float32)[:, None] * inv_freq.to(torch.float32)[None, :]
    angles = torch.cat([freqs, freqs], dim=-1)
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    first, second = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-second, first], dim=-1) * sin


class Attention(nn.Module):
    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        dim = config.head_dim
        self.q_proj = nn.Linear(config.hidden_size, config.num_heads * dim, bias=False)
        self.k_proj = nn.Linear(config.hidden_size, config.num_kv_heads * dim, bias=False)
        self.v_proj = nn.Linear(config.hidden_size, config.num_kv_heads * dim, bias=False)
        self.o_proj = nn.Linear(config.num_heads * dim, config.hidden_size, bias=False)
        self.dropout = config.dropout

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        c = self.config
        batch, length, _ = x.shape  # (B, T, C)
        q = self.q_proj(x).view(batch, length, c.num_heads, c.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(batch, length, c.num_kv_heads, c.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(batch, length, c.num_kv_heads, c.head_dim).transpose(1, 2)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)  # (B, heads, T, D)
        groups = c.num_heads // c.num_kv_heads
        k = k.repeat_interleave(groups, dim=1)  # (B, H, T, D)
        v = v.repeat_interleave(groups, dim=1)
        y = F.scaled_dot_product_attention(
            q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0
        )
        return self.o_proj(y.transpose(1, 2).reshape(batch, length, -1))  # (B, T, C)


class SwiGLU(nn.Module):
    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_eps)
        self.self_attn = Attention(config)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_eps)
        self.mlp = SwiGLU(config)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.dropout(self.self_attn(self.input_layernorm(x), cos, sin))
        return x + self.dropout(self.mlp(self.post_attention_layernorm(x)))


class TransformerLM(nn.Module):
    """Maps token ids (B, T) to next-token logits (B, T, V)."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(Block(config) for _ in range(config.num_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_eps)
        self.lm_head = None
        if not config.tie_embeddings:
            self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.apply(self._init_weights)
        # GPT-2's scaled init for the projections that write into the residual stream.
        for name, parameter in self.named_parameters():
            if name.endswith(("o_proj.weight", "down_proj.weight")):
                nn.init.normal_(parameter, std=0.02 / math.sqrt(2 * config.num_layers))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        length = input_ids.shape[1]
        if length > self.config.context_length:
            raise ValueError(f"sequence of {length} exceeds context {self.config.context_length}")
        positions = torch.arange(length, device=input_ids.device)
        cos, sin = rotary_tables(positions, self.config.head_dim, self.config.rope_theta)
        x = self.embed_tokens(input_ids)  # (B, T, C)
        for block in self.layers:
            x = block(x, cos.to(x.dtype), sin.to(x.dtype))
        x = self.norm(x)
        if self.lm_head is None:
            return x @ self.embed_tokens.weight.T  # (B, T, V)
        return self.lm_head(x)
