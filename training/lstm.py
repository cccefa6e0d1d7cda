"""An LSTM language model: embedding, an n-layer LSTM, and a projection to the vocabulary."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class LSTMConfig:
    vocab_size: int = 512  # tokens in the tokenizer
    context_length: int = 256  # sequence length used in training (the LSTM itself is unbounded)
    embed_size: int = 64  # width of the token embedding
    hidden_size: int = 128  # LSTM state size per layer
    num_layers: int = 2  # stacked LSTM layers
    dropout: float = 0.0  # dropout between LSTM layers while training


class LSTMLM(nn.Module):
    """Maps token ids (B, T) to next-token logits (B, T, V)."""

    def __init__(self, config: LSTMConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.embed_size)
        self.lstm = nn.LSTM(
            config.embed_size, config.hidden_size, num_layers=config.num_layers, batch_first=True,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
        )
        self.proj = nn.Linear(config.hidden_size, config.vocab_size)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.lstm(self.embed(input_ids))  # (B, T, H)
        return self.proj(hidden)  # (B, T, V)
