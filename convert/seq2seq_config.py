"""The configuration of Nightlamp's encoder-decoder (translation) Transformer.

One dataclass describes both our own trained translation models and imported Marian / OPUS-MT
checkpoints (transformers' ``MarianMTModel`` is the reference). The PyTorch model
(``training/seq2seq_model.py``), the ONNX graph builder (``convert/seq2seq_graph.py``) and the
Marian importer all read it. No torch import here, so the importer runs without PyTorch.

The shared encoder-decoder contract (binding for the model, graph and engine code):

* Positions are sinusoidal exactly as ``MarianSinusoidalPositionalEmbedding``: sin in the first
  half of the dims, cos in the second half, no learned parameters.
* Parameter names are transformers' ``MarianMTModel`` state_dict names (``model.shared.weight``,
  ``model.encoder.layers.{i}.self_attn.{q,k,v,out}_proj.{weight,bias}``,
  ``...self_attn_layer_norm.*``, ``.fc1``/``.fc2``, ``.final_layer_norm``; decoder layers also have
  ``encoder_attn.*`` and ``encoder_attn_layer_norm.*``; ``lm_head.weight``, ``final_logits_bias``),
  plus, for ``normalize_before=True`` only, ``model.encoder.layer_norm.*`` and
  ``model.decoder.layer_norm.*`` (the final norms of a pre-norm stack).
* With ``normalize_before=False`` the model reproduces ``MarianMTModel``'s logits for the same
  weights.

The ONNX graphs are specified in ``convert/seq2seq_graph.py``, the model folder in
``convert/seq2seq_folder.py`` (and ``engine.manifest.EncoderDecoderSpec``), the engine API in
``engine/seq2seq.py``. :func:`sinusoidal_positions` is the one position table all of them use.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

ACTIVATIONS = ("swish", "gelu", "relu")


def sinusoidal_positions(num_positions: int, dim: int) -> np.ndarray:
    """The (num_positions, dim) float32 position table of ``MarianSinusoidalPositionalEmbedding``.

    Row p holds sin(p / 10000^(2i/dim)) in its first half and cos of the same angles in its
    second half (not interleaved), computed in float64 and rounded once, as transformers does.
    """
    if dim % 2:
        raise ValueError(f"the position table needs an even width, got {dim}")
    exponents = 2 * np.arange(dim // 2, dtype=np.float64) / dim
    angles = np.arange(num_positions, dtype=np.float64)[:, None] / np.power(10000.0, exponents)
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1).astype(np.float32)


@dataclass
class Seq2SeqConfig:
    vocab_size: int = 512  # tokens in the (shared) vocabulary, source and target
    d_model: int = 64  # D: width of the residual stream in both stacks
    encoder_layers: int = 2  # number of encoder blocks
    decoder_layers: int = 2  # number of decoder blocks
    encoder_attention_heads: int = 4  # heads of the encoder self-attention
    decoder_attention_heads: int = 4  # heads of the decoder self- and cross-attention
    encoder_ffn_dim: int = 256  # width of the encoder feed-forward layer (fc1)
    decoder_ffn_dim: int = 256  # width of the decoder feed-forward layer (fc1)
    activation: str = "swish"  # feed-forward activation: "swish" (SiLU), "gelu" (exact), "relu"
    max_position_embeddings: int = 512  # longest source or target sequence (sinusoid table rows)
    scale_embedding: bool = True  # multiply token embeddings by sqrt(d_model) (Marian: True)
    normalize_before: bool = False  # pre-norm blocks + final stack norms (ours); False = Marian
    share_embeddings: bool = True  # encoder, decoder and lm_head share model.shared.weight
    decoder_start_token_id: int = 0  # first decoder input (Marian: the pad token)
    pad_token_id: int = 0  # padding id of source batches (and Marian's decoder start)
    eos_token_id: int = 1  # end of sentence, appended to every source, stops decoding
    layer_norm_eps: float = 1e-5  # LayerNorm epsilon in every norm
    final_logits_bias: bool = True  # a (1, V) bias added to the logits (Marian has the buffer)

    @property
    def decoder_head_dim(self) -> int:
        return self.d_model // self.decoder_attention_heads

    def validate(self) -> None:
        """Raise ValueError naming the field when the configuration cannot build a model."""
        for name in ("vocab_size", "d_model", "encoder_layers", "decoder_layers",
                     "encoder_attention_heads", "decoder_attention_heads", "encoder_ffn_dim",
                     "decoder_ffn_dim", "max_position_embeddings"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"Seq2SeqConfig.{name} must be a positive integer, got {value!r}")
        for name in ("encoder_attention_heads", "decoder_attention_heads"):
            if self.d_model % getattr(self, name):
                raise ValueError(f"Seq2SeqConfig.d_model ({self.d_model}) must be a multiple of "
                                 f"{name} ({getattr(self, name)})")
        if self.d_model % 2:
            raise ValueError("Seq2SeqConfig.d_model must be even (sinusoidal positions)")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"Seq2SeqConfig.activation must be one of {', '.join(ACTIVATIONS)}, "
                             f"got {self.activation!r}")
        for name in ("decoder_start_token_id", "pad_token_id", "eos_token_id"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 0 <= value < self.vocab_size:
                raise ValueError(f"Seq2SeqConfig.{name} must be a token id below vocab_size "
                                 f"({self.vocab_size}), got {value!r}")
        if not self.layer_norm_eps > 0:
            raise ValueError("Seq2SeqConfig.layer_norm_eps must be positive")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Seq2SeqConfig:
        """Build from a dict with exactly this class's field names; unknown keys are refused."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown Seq2SeqConfig field(s): {', '.join(unknown)}")
        config = cls(**data)
        config.validate()
        return config

    @classmethod
    def from_marian(cls, hf: dict[str, Any]) -> Seq2SeqConfig:
        """Map a Hugging Face Marian ``config.json`` (as a dict) onto this configuration.

        Raises:
            ValueError: a field is missing or has a value this family does not support (e.g.
                separate source and target vocabularies).
        """
        def need(key: str) -> Any:
            if key not in hf:
                raise ValueError(f"config.json has no {key!r}")
            return hf[key]

        vocab = int(need("vocab_size"))
        decoder_vocab = hf.get("decoder_vocab_size")
        if decoder_vocab is not None and int(decoder_vocab) != vocab:
            raise ValueError(f"config.json decoder_vocab_size ({decoder_vocab}) differs from "
                             f"vocab_size ({vocab}); separate vocabularies are not supported")
        # Defaults are MarianConfig's, for keys a config.json leaves out. transformers' Marian
        # is always post-norm and ignores old configs' "normalize_before"; so does this.
        activation = str(hf.get("activation_function", "gelu"))
        if activation == "silu":
            activation = "swish"
        share = bool(hf.get("share_encoder_decoder_embeddings", True))
        tied = bool(hf.get("tie_word_embeddings", True))
        pad = int(hf.get("pad_token_id", vocab - 1))
        start = hf.get("decoder_start_token_id")
        config = cls(
            vocab_size=vocab,
            d_model=int(need("d_model")),
            encoder_layers=int(need("encoder_layers")),
            decoder_layers=int(need("decoder_layers")),
            encoder_attention_heads=int(need("encoder_attention_heads")),
            decoder_attention_heads=int(need("decoder_attention_heads")),
            encoder_ffn_dim=int(need("encoder_ffn_dim")),
            decoder_ffn_dim=int(need("decoder_ffn_dim")),
            activation=activation,
            max_position_embeddings=int(hf.get("max_position_embeddings", 1024)),
            scale_embedding=bool(hf.get("scale_embedding", False)),
            normalize_before=False,
            share_embeddings=share and tied,
            decoder_start_token_id=pad if start is None else int(start),
            pad_token_id=pad,
            eos_token_id=int(hf.get("eos_token_id", 0)),
            layer_norm_eps=1e-5,
            final_logits_bias=True,
        )
        config.validate()
        return config
