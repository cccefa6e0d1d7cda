"""Turns a Llama-family GGUF file into a Hugging Face Llama folder of its dequantized weights.

    .venv/bin/python benchmarks/peers/gguf_to_hf.py MODEL.gguf OUT_FOLDER [--check]

onnxruntime-genai's model builder reads Hugging Face folders only, and the hub is out of reach
here; converting the very GGUF that llama.cpp and Nightlamp run means all three runtimes start
from the same weights (the builder then quantizes them again to its own int4 format). Reading
goes through Nightlamp's own GGUF importer, which dequantizes Q4_1/Q8_0 blocks and undoes
llama.cpp's query/key row permutation, so the folder is in plain Hugging Face layout.

Writes config.json, model.safetensors (float32), tokenizer.json, tokenizer_config.json (with the
chat template), special_tokens_map.json and generation_config.json. ``--check`` loads the folder
with transformers and greedy-generates an answer to a chat prompt, which should be plain English.
Runs with the project venv (numpy, torch, transformers, safetensors).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # run as a script from anywhere: import the project's importer
    sys.path.insert(0, str(REPO))

from convert.importers.gguf_model import read_gguf_model  # noqa: E402
from convert.importers.imported import ImportedModel  # noqa: E402


def _round(value: float) -> float:
    """GGUF stores float32 hyper-parameters (9.99999975e-06); give back the intended 1e-05."""
    return float(f"{value:.7g}")


def hf_config(model: ImportedModel, bos_id: int | None, eos_id: int | None,
              pad_id: int | None) -> dict[str, Any]:
    """A LlamaForCausalLM config.json for the imported shape."""
    shape = model.shape
    ffn = model.weights["layers.0.mlp.gate_proj.weight"].shape[0]
    config: dict[str, Any] = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": shape.vocab_size,
        "hidden_size": shape.hidden_size,
        "intermediate_size": int(ffn),
        "num_hidden_layers": shape.num_layers,
        "num_attention_heads": shape.num_heads,
        "num_key_value_heads": shape.num_kv_heads,
        "head_dim": shape.head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": model.context_length,
        "rms_norm_eps": _round(shape.rms_eps),
        "rope_theta": _round(shape.rope_theta),
        "rope_scaling": None,
        "attention_bias": "layers.0.self_attn.q_proj.bias" in model.weights,
        "attention_dropout": 0.0,
        "mlp_bias": False,
        "tie_word_embeddings": shape.tie_embeddings,
        "initializer_range": 0.02,
        "pretraining_tp": 1,
        "use_cache": True,
        "torch_dtype": "float32",
        "bos_token_id": bos_id,
        "eos_token_id": eos_id,
        "pad_token_id": pad_id,
    }
    if shape.rope_freq_factors is not None:
        raise SystemExit("Llama 3.1-style rope frequency factors are not converted")
    return config


def token_id(model: ImportedModel, token: str | None) -> int | None:
    return None if token is None else model.tokenizer.token_to_id(token)


def tokenizer_config(model: ImportedModel, source_bos: str | None) -> dict[str, Any]:
    """tokenizer_config.json in the shape transformers and onnxruntime-extensions read."""
    added = json.loads(model.tokenizer.to_str())["added_tokens"]
    return {
        "tokenizer_class": "GPT2Tokenizer",
        "add_bos_token": model.bos_token is not None,
        "add_eos_token": False,
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": False,
        "bos_token": model.bos_token or source_bos,
        "eos_token": model.eos_token,
        "pad_token": model.pad_token,
        "unk_token": model.tokenizer.id_to_token(0),
        "model_max_length": model.context_length,
        "chat_template": model.chat_template,
        "added_tokens_decoder": {
            str(t["id"]): {key: t[key] for key in
                           ("content", "lstrip", "rstrip", "normalized", "single_word", "special")}
            for t in added
        },
    }


def write_folder(gguf: Path, out: Path) -> Path:
    """Reads the GGUF at float32 and writes the Hugging Face folder (replacing files in it)."""
    import torch
    from safetensors.torch import save_file

    from convert.importers.gguf_reader import GGUFFile

    model = read_gguf_model(gguf, precision="fp32")
    with GGUFFile(gguf) as file:  # the BOS token is named even when it is not prepended
        bos_index = file.metadata.get("tokenizer.ggml.bos_token_id")
    source_bos = None if bos_index is None else model.tokenizer.id_to_token(int(bos_index))
    bos_id = token_id(model, model.bos_token or source_bos)
    eos_id, pad_id = token_id(model, model.eos_token), token_id(model, model.pad_token)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for name, weight in model.weights.items():
        if not isinstance(weight, np.ndarray):
            raise SystemExit(f"{name} is still packed; expected float weights at fp32")
        key = name if name == "lm_head.weight" else f"model.{name}"
        tensors[key] = torch.from_numpy(np.ascontiguousarray(weight, dtype=np.float32))
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    config = hf_config(model, bos_id, eos_id, pad_id)
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    model.tokenizer.save(str(out / "tokenizer.json"))
    tok_config = tokenizer_config(model, source_bos)
    (out / "tokenizer_config.json").write_text(json.dumps(tok_config, indent=2) + "\n")
    specials = {key: tok_config[key] for key in ("bos_token", "eos_token", "pad_token", "unk_token")
                if tok_config[key] is not None}
    (out / "special_tokens_map.json").write_text(json.dumps(specials, indent=2) + "\n")
    generation = {"bos_token_id": bos_id, "eos_token_id": eos_id, "pad_token_id": pad_id,
                  "do_sample": False}
    (out / "generation_config.json").write_text(json.dumps(generation, indent=2) + "\n")
    conversion = {"source": str(gguf), "tensors": model.tensor_report,
                  "by": "benchmarks/peers/gguf_to_hf.py"}
    (out / "conversion.json").write_text(json.dumps(conversion, indent=2) + "\n")
    return out


def check_folder(folder: Path) -> str:
    """Loads the folder with transformers and greedy-generates a short chat answer.

    Raises SystemExit when the answer is not mostly English letters (a sign of wrong weights:
    a bad q/k permutation, for example, gives fluent-looking garbage or repetition).
    """
    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM

    torch.set_num_threads(2)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = LlamaForCausalLM.from_pretrained(folder, dtype=torch.float32)
    model.eval()
    messages = [{"role": "user", "content": "What is the capital of France? Answer briefly."}]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).input_ids
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=40, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)
    answer = tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
    letters = sum(c.isascii() and (c.isalpha() or c.isspace()) for c in answer)
    if not answer.strip() or letters < 0.8 * len(answer) or "paris" not in answer.lower():
        raise SystemExit(f"the converted model does not answer sensibly: {answer!r}")
    return answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gguf", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--check", action="store_true",
                        help="load with transformers and greedy-generate a chat answer")
    args = parser.parse_args()
    started = time.perf_counter()
    folder = write_folder(args.gguf, args.out)
    print(f"wrote {folder} in {time.perf_counter() - started:.1f} s")
    if args.check:
        print(f"transformers greedy answer: {check_folder(folder)!r}")


if __name__ == "__main__":
    main()
