"""A random tiny Hugging Face checkpoint folder (Llama, Mistral or Qwen2), written by
transformers itself, for import tests (no downloads)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
          "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def _tokenizer() -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>", "<|im_start|>",
                                                                  "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tokenizer.train_from_iterator(["the lamp lights the page at night"] * 20, trainer=trainer)
    return tokenizer


def save_tiny_hf(folder: Path, kind: str = "llama", tied: bool = True,
                 context: int = 128) -> torch.nn.Module:
    """Writes config.json, model.safetensors, tokenizer.json and tokenizer_config.json."""
    import transformers

    tokenizer = _tokenizer()
    common = {"vocab_size": tokenizer.get_vocab_size(), "hidden_size": 64,
              "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4,
              "num_key_value_heads": 2, "max_position_embeddings": context, "rope_theta": 5000.0,
              "rms_norm_eps": 1e-6, "tie_word_embeddings": tied, "eos_token_id": 2,
              "bos_token_id": 0}
    config_class, model_class = {
        "llama": (transformers.LlamaConfig, transformers.LlamaForCausalLM),
        "mistral": (transformers.MistralConfig, transformers.MistralForCausalLM),
        "qwen2": (transformers.Qwen2Config, transformers.Qwen2ForCausalLM),
    }[kind]
    torch.manual_seed(0)
    model = model_class(config_class(**common)).eval()
    with torch.no_grad():  # random but not tiny: make the logits distinguishable
        for parameter in model.parameters():
            parameter.normal_(0, 0.15)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"chat_template": CHATML, "eos_token": "<|im_end|>", "bos_token": None}))
    return model


def as_hub_snapshot(folder: Path, cache: Path, repo: str = "models--tiny--llama",
                    revision: str = "0123456789abcdef") -> Path:
    """Lays a folder's files out as the Hugging Face hub cache does: each file's bytes in
    ``cache/REPO/blobs/<sha256>``, and ``cache/REPO/snapshots/REVISION/NAME`` a relative link
    to ``../../blobs/<sha256>``. Returns the snapshot folder."""
    import hashlib

    blobs = cache / repo / "blobs"
    snapshot = cache / repo / "snapshots" / revision
    blobs.mkdir(parents=True)
    snapshot.mkdir(parents=True)
    for path in sorted(folder.iterdir()):
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        (snapshot / path.name).symlink_to(Path("..") / ".." / "blobs" / digest)
    return snapshot


def write_raw_safetensors(path: Path, header: object, data: bytes = b"") -> Path:
    """A safetensors file with exactly this header (any JSON value, or text to write as it
    is) and data, for tests of damaged or hostile files."""
    text = header if isinstance(header, str) else json.dumps(header)
    encoded = text.encode("utf-8")
    path.write_bytes(len(encoded).to_bytes(8, "little") + encoded + data)
    return path
