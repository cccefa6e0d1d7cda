"""Folders laid out by onnxruntime-genai's model builder, Optimum and transformers.js load, and
generate exactly what the same model does from its native Nightlamp folder."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from commands.main import main
from engine.errors import ModelFormatError, ModelNotFoundError
from engine.formats import read_model_folder
from engine.generation import GenerationConfig, Generator, generate, prompt_ids
from engine.model import Model, load_model
from engine.sampling import SamplingSettings

GREEDY = SamplingSettings(temperature=0, repetition_penalty=1.0)
# A template of their own, so the test can tell it from the native folder's ChatML.
TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
            "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
EOS, IM_END = 0, 2  # ids of <|endoftext|> and <|im_end|> in the trained tokenizer


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


def tokenizer_config(folder: Path, **extra: Any) -> None:
    write_json(folder / "tokenizer_config.json", {
        "bos_token": "<|endoftext|>",
        "eos_token": {"content": "<|endoftext|>", "special": True},  # AddedToken form
        "pad_token": None,
        **extra,
    })


def genai_config(native: dict[str, Any]) -> dict[str, Any]:
    cache = native["kv_cache"]
    return {
        "model": {
            "bos_token_id": EOS,
            "context_length": native["context_length"],
            "decoder": {
                "session_options": {"log_id": "onnxruntime-genai", "provider_options": []},
                "filename": "model.onnx",
                "head_size": cache["head_dim"],
                "hidden_size": cache["head_dim"] * 4,
                "inputs": {
                    "input_ids": "input_ids",
                    "attention_mask": "attention_mask",
                    "position_ids": "position_ids",
                    "past_key_names": "past_key_values.%d.key",
                    "past_value_names": "past_key_values.%d.value",
                },
                "outputs": {
                    "logits": "logits",
                    "present_key_names": "present.%d.key",
                    "present_value_names": "present.%d.value",
                },
                "num_attention_heads": 4,
                "num_hidden_layers": cache["num_layers"],
                "num_key_value_heads": cache["num_kv_heads"],
            },
            "eos_token_id": [EOS, IM_END],
            "pad_token_id": EOS,
            "type": "llama",
            "vocab_size": native["vocab_size"],
        },
        "search": {"do_sample": False, "max_length": native["context_length"]},
    }


def optimum_config(native: dict[str, Any]) -> dict[str, Any]:
    cache = native["kv_cache"]
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": cache["head_dim"] * 4,
        "num_attention_heads": 4,
        "num_key_value_heads": cache["num_kv_heads"],
        "num_hidden_layers": cache["num_layers"],
        "intermediate_size": 176,
        "vocab_size": native["vocab_size"],
        "max_position_embeddings": native["context_length"],
        "eos_token_id": IM_END,
        "bos_token_id": EOS,
        "tie_word_embeddings": True,
        "torch_dtype": "float32",
    }


def make_genai(native_dir: Path, folder: Path) -> None:
    native = json.loads((native_dir / "nightlamp.json").read_text(encoding="utf-8"))
    folder.mkdir(parents=True)
    shutil.copyfile(native_dir / "model.onnx", folder / "model.onnx")
    shutil.copyfile(native_dir / "tokenizer.json", folder / "tokenizer.json")
    write_json(folder / "genai_config.json", genai_config(native))
    tokenizer_config(folder, chat_template=TEMPLATE)


def make_optimum(native_dir: Path, folder: Path) -> None:
    native = json.loads((native_dir / "nightlamp.json").read_text(encoding="utf-8"))
    folder.mkdir(parents=True)
    shutil.copyfile(native_dir / "model.onnx", folder / "model.onnx")
    shutil.copyfile(native_dir / "tokenizer.json", folder / "tokenizer.json")
    write_json(folder / "config.json", optimum_config(native))
    write_json(folder / "generation_config.json", {"bos_token_id": EOS,
                                                   "eos_token_id": [EOS, IM_END]})
    tokenizer_config(folder, chat_template=TEMPLATE)


def make_transformers_js(native_dir: Path, folder: Path) -> None:
    native = json.loads((native_dir / "nightlamp.json").read_text(encoding="utf-8"))
    (folder / "onnx").mkdir(parents=True)
    shutil.copyfile(native_dir / "model.onnx", folder / "onnx" / "model.onnx")
    shutil.copyfile(native_dir / "tokenizer.json", folder / "tokenizer.json")
    write_json(folder / "config.json", {**optimum_config(native), "eos_token_id": [EOS, IM_END]})
    tokenizer_config(folder)
    (folder / "chat_template.jinja").write_text(TEMPLATE, encoding="utf-8")


LAYOUTS: dict[str, tuple[Callable[[Path, Path], None], str, str]] = {
    # layout: (builder, decoder file, source format)
    "genai": (make_genai, "model.onnx", "onnxruntime-genai"),
    "optimum": (make_optimum, "model.onnx", "optimum"),
    "transformers-js": (make_transformers_js, "onnx/model.onnx", "optimum"),
}


@pytest.fixture(scope="module")
def native(transformer_model_dir: Path) -> Model:
    return load_model(transformer_model_dir, device="cpu", threads=1)


@pytest.fixture(params=list(LAYOUTS))
def layout(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def foreign_dir(layout: str, transformer_model_dir: Path, tmp_path: Path) -> Path:
    folder = tmp_path / f"tiny-{layout}"
    LAYOUTS[layout][0](transformer_model_dir, folder)
    return folder


def greedy_ids(model: Model, ids: list[int], count: int = 20) -> list[int]:
    generator = Generator(model, GenerationConfig(max_new_tokens=count, sampling=GREEDY))
    generator.append_tokens(ids)
    while not generator.is_done():
        generator.generate_next_token()
    return generator.generated


def test_foreign_folder_reads_into_a_manifest(layout: str, foreign_dir: Path,
                                              native: Model) -> None:
    manifest = read_model_folder(foreign_dir)
    _, decoder_file, source_format = LAYOUTS[layout]

    assert manifest.architecture == "decoder-transformer"
    assert manifest.decoder_file == decoder_file
    assert manifest.tokenizer_file == "tokenizer.json"
    assert manifest.name == foreign_dir.name
    assert manifest.vocab_size == native.manifest.vocab_size
    assert manifest.context_length == native.manifest.context_length
    # Foreign folders share the cache buffer only when they say so (genai's search option).
    assert manifest.kv_cache == replace(native.manifest.kv_cache, shared_buffer=False)
    assert manifest.chat_template == TEMPLATE
    assert manifest.bos_token == manifest.eos_token == "<|endoftext|>"
    assert manifest.source["format"] == source_format
    assert "chat" in manifest.tasks


def test_foreign_folder_generates_like_the_native_one(foreign_dir: Path, native: Model) -> None:
    model = load_model(foreign_dir, device="cpu", threads=1)
    config = GenerationConfig(max_new_tokens=20, sampling=GREEDY)

    assert model.stop_token_ids == frozenset({EOS, IM_END})
    assert model.bos_token_id == native.bos_token_id == EOS
    for prompt in ("The lamp", "你好"):
        assert prompt_ids(model, prompt) == prompt_ids(native, prompt)
        ids = prompt_ids(native, prompt)
        expected = greedy_ids(native, ids)
        assert len(expected) >= 10
        assert greedy_ids(model, ids) == expected
        text = "".join(c.text for c in generate(model, prompt, config))
        assert text == "".join(c.text for c in generate(native, prompt, config))


def test_foreign_chat_template_is_used(foreign_dir: Path, native: Model) -> None:
    model = load_model(foreign_dir, device="cpu", threads=1)
    messages = [{"role": "user", "content": "Hello"}]
    ids = prompt_ids(model, messages)

    assert model.manifest.chat_template == TEMPLATE
    assert ids == model.tokenizer.encode(
        "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n")
    assert ids == prompt_ids(native, messages)  # same format as the native ChatML, by design


def test_config_eos_id_becomes_a_stop_token(foreign_dir: Path, native: Model) -> None:
    ids = prompt_ids(native, "The lamp")
    first = greedy_ids(native, ids, 1)[0]
    assert first not in load_model(foreign_dir, device="cpu", threads=1).stop_token_ids
    # Name the first greedy token as an end-of-sequence id, the way the layout's config does.
    genai = foreign_dir / "genai_config.json"
    if genai.is_file():
        config = json.loads(genai.read_text(encoding="utf-8"))
        config["model"]["eos_token_id"] = first
        write_json(genai, config)
    else:
        write_json(foreign_dir / "generation_config.json", {"eos_token_id": [first]})

    model = load_model(foreign_dir, device="cpu", threads=1)
    assert first in model.stop_token_ids
    chunks = list(generate(model, "The lamp", GenerationConfig(sampling=GREEDY)))
    assert chunks[-1].finish_reason == "stop"
    assert chunks[-1].stats is not None and chunks[-1].stats.completion_tokens == 0


def test_cli_runs_a_foreign_folder(foreign_dir: Path, native: Model,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["generate", "-m", str(foreign_dir), "The lamp", "--temperature", "0",
                 "--repetition-penalty", "1", "--max-tokens", "12", "--device", "cpu", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    expected = "".join(c.text for c in generate(
        native, "The lamp", GenerationConfig(max_new_tokens=12, sampling=GREEDY)))
    assert json.loads(out)["text"] == expected


def test_genai_names_default_like_onnxruntime_genai(transformer_model_dir: Path, native: Model,
                                                    tmp_path: Path) -> None:
    folder = tmp_path / "genai"
    make_genai(transformer_model_dir, folder)
    config = json.loads((folder / "genai_config.json").read_text(encoding="utf-8"))
    del config["model"]["decoder"]["inputs"]  # every name left to its default
    del config["model"]["decoder"]["outputs"]
    write_json(folder / "genai_config.json", config)

    model = load_model(folder, device="cpu", threads=1)
    assert model.manifest.io.position_ids == "position_ids"
    ids = prompt_ids(native, "The lamp")
    assert greedy_ids(model, ids) == greedy_ids(native, ids)


def test_genai_shared_buffer_follows_its_search_option(transformer_model_dir: Path, native: Model,
                                                       tmp_path: Path) -> None:
    """genai's builder marks GroupQueryAttention graphs past_present_share_buffer: the engine
    then binds one cache buffer, and generates exactly what it generates feeding the cache."""
    folder = tmp_path / "genai"
    make_genai(transformer_model_dir, folder)
    config = json.loads((folder / "genai_config.json").read_text(encoding="utf-8"))
    config["search"]["past_present_share_buffer"] = True
    write_json(folder / "genai_config.json", config)
    model = load_model(folder, device="cpu", threads=1)
    assert model.manifest.kv_cache is not None and model.manifest.kv_cache.shared_buffer
    assert model.decoder_runner()._buffers is not None
    ids = prompt_ids(native, "The lamp")
    assert greedy_ids(model, ids) == greedy_ids(native, ids)


def test_genai_without_a_chat_template_has_none(transformer_model_dir: Path,
                                                tmp_path: Path) -> None:
    folder = tmp_path / "genai"
    make_genai(transformer_model_dir, folder)
    (folder / "tokenizer_config.json").unlink()
    manifest = read_model_folder(folder)
    assert manifest.chat_template is None
    assert manifest.bos_token is None
    assert manifest.stop_tokens == ("<id:0>", "<id:2>")


def test_named_chat_templates_pick_the_default(transformer_model_dir: Path,
                                               tmp_path: Path) -> None:
    folder = tmp_path / "optimum"
    make_optimum(transformer_model_dir, folder)
    tokenizer_config(folder, chat_template=[{"name": "tool_use", "template": "tools"},
                                            {"name": "default", "template": TEMPLATE}])
    assert read_model_folder(folder).chat_template == TEMPLATE


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    def edit(config: dict[str, Any]) -> None:
        *parents, key = path.split(".")
        for parent in parents:
            config = config[parent]
        del config[key]

    return edit


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(config: dict[str, Any]) -> None:
        *parents, key = path.split(".")
        for parent in parents:
            config = config[parent]
        config[key] = value

    return edit


BAD_GENAI = [
    ("head-size-missing", _drop("model.decoder.head_size"), "field 'model.decoder.head_size'"),
    ("layers-zero", _set("model.decoder.num_hidden_layers", 0),
     "field 'model.decoder.num_hidden_layers'"),
    ("kv-heads-string", _set("model.decoder.num_key_value_heads", "2"),
     "field 'model.decoder.num_key_value_heads'"),
    ("context-missing", _drop("model.context_length"), "field 'model.context_length'"),
    ("vocab-missing", _drop("model.vocab_size"), "field 'model.vocab_size'"),
    ("decoder-missing", _drop("model.decoder"), "field 'model.decoder' is missing"),
    ("cache-name-without-layer", _set("model.decoder.inputs.past_key_names", "past.key"),
     "field 'model.decoder.past_key_names'"),
]


@pytest.mark.parametrize(("edit", "part"), [case[1:] for case in BAD_GENAI],
                         ids=[case[0] for case in BAD_GENAI])
def test_bad_genai_config_names_the_field(edit: Callable[[dict[str, Any]], None], part: str,
                                          transformer_model_dir: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "genai"
    make_genai(transformer_model_dir, folder)
    config = json.loads((folder / "genai_config.json").read_text(encoding="utf-8"))
    edit(config)
    write_json(folder / "genai_config.json", config)

    with pytest.raises(ModelFormatError) as caught:
        load_model(folder, device="cpu")
    assert str(folder / "genai_config.json") in str(caught.value)
    assert part in str(caught.value)

    assert main(["generate", "-m", str(folder), "hi"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nightlamp: error: ") and err.count("\n") == 1
    assert part in err


BAD_OPTIMUM = [
    ("heads-missing", _drop("num_attention_heads"), "field 'num_attention_heads'"),
    ("layers-missing", _drop("num_hidden_layers"), "field 'num_hidden_layers'"),
    ("positions-missing", _drop("max_position_embeddings"), "field 'max_position_embeddings'"),
    ("vocab-negative", _set("vocab_size", -5), "field 'vocab_size'"),
]


@pytest.mark.parametrize(("edit", "part"), [case[1:] for case in BAD_OPTIMUM],
                         ids=[case[0] for case in BAD_OPTIMUM])
def test_bad_optimum_config_names_the_field(edit: Callable[[dict[str, Any]], None], part: str,
                                            transformer_model_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "optimum"
    make_optimum(transformer_model_dir, folder)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    edit(config)
    write_json(folder / "config.json", config)

    with pytest.raises(ModelFormatError) as caught:
        load_model(folder, device="cpu")
    assert str(folder / "config.json") in str(caught.value)
    assert part in str(caught.value)


@pytest.mark.parametrize(("builder", "config_name", "edit"), [
    (make_genai, "genai_config.json", _set("model.decoder.num_hidden_layers", 3)),
    (make_optimum, "config.json", _set("num_hidden_layers", 3)),
    (make_transformers_js, "config.json", _set("num_key_value_heads", 4)),
], ids=["genai", "optimum", "transformers-js"])
def test_mismatch_errors_name_the_config_that_was_read(
        builder: Callable[[Path, Path], None], config_name: str,
        edit: Callable[[dict[str, Any]], None], transformer_model_dir: Path,
        tmp_path: Path) -> None:
    folder = tmp_path / "foreign"
    builder(transformer_model_dir, folder)
    config = json.loads((folder / config_name).read_text(encoding="utf-8"))
    edit(config)
    write_json(folder / config_name, config)

    with pytest.raises(ModelFormatError) as caught:
        load_model(folder, device="cpu", threads=1)
    message = str(caught.value)
    assert message.startswith(f"{folder / config_name}: ")
    assert "nightlamp.json" not in message  # the folder has none


def test_config_json_without_an_onnx_decoder_is_not_a_model(transformer_model_dir: Path,
                                                            tmp_path: Path) -> None:
    folder = tmp_path / "pytorch-only"
    make_optimum(transformer_model_dir, folder)
    (folder / "model.onnx").unlink()
    with pytest.raises(ModelNotFoundError, match="not a model folder"):
        load_model(folder, device="cpu")


def test_genai_decoder_outside_the_folder_is_refused(transformer_model_dir: Path,
                                                     tmp_path: Path) -> None:
    folder = tmp_path / "genai"
    make_genai(transformer_model_dir, folder)
    config = json.loads((folder / "genai_config.json").read_text(encoding="utf-8"))
    config["model"]["decoder"]["filename"] = "../model.onnx"
    write_json(folder / "genai_config.json", config)
    shutil.copyfile(folder / "model.onnx", tmp_path / "model.onnx")
    with pytest.raises(ModelFormatError, match="outside the model folder"):
        load_model(folder, device="cpu")
