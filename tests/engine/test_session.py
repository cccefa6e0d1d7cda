"""engine.session, the pieces both model loaders share: sessions, I/O-name checks, token ids
named in a manifest (``<id:N>`` included), ONNX Runtime errors on one line, float types."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper
from tokenizers import Tokenizer as HFTokenizer
from tokenizers.models import WordLevel

from engine.errors import ModelFormatError, TokenizerError
from engine.session import (
    check_io_names,
    check_tokenizer_fits,
    float_type,
    open_session,
    short_reason,
    token_id,
)
from engine.tokenizer import Tokenizer

VOCAB = 8  # the model's vocabulary; the tokenizer below has 3 of its tokens


@pytest.fixture
def tokenizer(tmp_path: Path) -> Tokenizer:
    path = tmp_path / "tokenizer.json"
    HFTokenizer(WordLevel({"<unk>": 0, "</s>": 1, "hello": 2}, unk_token="<unk>")).save(str(path))
    return Tokenizer(path)


@pytest.fixture
def graph_file(tmp_path: Path) -> Path:
    """Two fixed-size identities: x (float32, [2]) -> z and h (float16, [2]) -> w."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["z"]), helper.make_node("Identity", ["h"], ["w"])],
        "pair",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2]),
         helper.make_tensor_value_info("h", TensorProto.FLOAT16, [2])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [2]),
         helper.make_tensor_value_info("w", TensorProto.FLOAT16, [2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "pair.onnx"
    onnx.save(model, str(path))
    return path


# token_id --------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "expected"), [("<id:0>", 0), ("<id:5>", 5),
                                                (f"<id:{VOCAB - 1}>", VOCAB - 1),
                                                ("<id:007>", 7), ("</s>", 1), ("hello", 2)])
def test_token_id_reads_ids_and_names(tokenizer: Tokenizer, name: str, expected: int) -> None:
    assert token_id(name, tokenizer, VOCAB, "stop_tokens", Path("m/nightlamp.json")) == expected


@pytest.mark.parametrize("name", [
    f"<id:{VOCAB}>",  # one past the end of the vocabulary
    "<id:99999999999999999999>",  # past the ten digits the parser reads
    "<id:\u00b2>",  # "²": str.isdigit() says True, int() refuses it
    "<id:\u0663>",  # Arabic-Indic 3: int() would read it as 3
    "<id:-1>", "<id:+1>", "<id: 1>", "<id:1 >", "<id:>", "<id:1e3>", "<id:0x1>", "<id:1_0>",
])
def test_token_id_refuses_an_id_that_is_not_ascii_digits_below_the_vocab(
        tokenizer: Tokenizer, name: str) -> None:
    manifest = Path("m/nightlamp.json")
    with pytest.raises(ModelFormatError) as caught:
        token_id(name, tokenizer, VOCAB, "eos_token", manifest)
    message = str(caught.value)
    assert message.startswith(f"{manifest}: field 'eos_token' has {name!r}, which is not "
                              f"'<id:N>' with N a token id below vocab_size ({VOCAB})")
    assert "\n" not in message


def test_token_id_names_the_field_of_an_unknown_token(tokenizer: Tokenizer) -> None:
    manifest = Path("m/nightlamp.json")
    with pytest.raises(TokenizerError) as caught:
        token_id("<pad>", tokenizer, VOCAB, "encoder_decoder.decoder_start_token", manifest)
    assert str(caught.value) == (
        f"{manifest}: field 'encoder_decoder.decoder_start_token' has '<pad>', which is not a "
        "token of tokenizer.json; the tokenizer does not belong to this model")


def test_a_tokenizer_bigger_than_the_model_is_refused(tokenizer: Tokenizer) -> None:
    check_tokenizer_fits(tokenizer, 3)
    with pytest.raises(TokenizerError, match="has 3 tokens but the model has 2"):
        check_tokenizer_fits(tokenizer, 2)


# short_reason ----------------------------------------------------------------------------

def test_short_reason_keeps_every_line_on_one() -> None:
    error = RuntimeError("[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : bad input\n index: 0 "
                         "Got: 3 Expected: 2\n\n  Please fix the model.  ")
    assert short_reason(error) == ("[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : bad input "
                                   "index: 0 Got: 3 Expected: 2 Please fix the model.")


def test_short_reason_is_bounded_and_never_empty() -> None:
    assert short_reason(RuntimeError("x\n" * 1000)) == "x " * 150  # the first 300 characters
    assert short_reason(RuntimeError("")) == "RuntimeError"
    assert short_reason(ValueError(" \n ")) == "ValueError"


def test_short_reason_of_a_real_onnx_runtime_failure(graph_file: Path) -> None:
    session = open_session(graph_file, "cpu", 1)
    with pytest.raises(Exception) as caught:  # ONNX Runtime raises its own exception types
        session.run(None, {"x": np.zeros(3, np.float32), "h": np.zeros(2, np.float16)})
    assert "\n" in str(caught.value)  # ONNX Runtime's message spans lines...
    reason = short_reason(caught.value)
    assert "\n" not in reason  # ...the short one does not, and keeps the middle line's detail
    assert "input: x" in reason and "Got: 3 Expected: 2" in reason


# open_session, check_io_names, float_type ------------------------------------------------

def test_open_session_errors_are_one_line_and_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.onnx"
    with pytest.raises(ModelFormatError, match="ONNX file is missing") as caught:
        open_session(missing, "cpu", None)
    assert str(caught.value).startswith(f"{missing}: ")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x00not an onnx file\n" * 50)
    with pytest.raises(ModelFormatError) as caught:
        open_session(broken, "cpu", None)
    message = str(caught.value)
    assert message.startswith(f"{broken}: ONNX Runtime cannot load this file (")
    assert message.endswith("; re-export or re-import the model") and "\n" not in message


def test_check_io_names(graph_file: Path) -> None:
    session = open_session(graph_file, "cpu", None)
    manifest = Path("m/nightlamp.json")
    check_io_names(session, graph_file, manifest, ["x", "h"], ["z", "w"])
    check_io_names(session, graph_file, manifest, ["x"], ["z"], optional=["h", "mask"])
    check_io_names(session, graph_file, manifest, ["x"], ["z"], exact=False)
    with pytest.raises(ModelFormatError) as caught:
        check_io_names(session, graph_file, manifest, ["x", "past"], ["z", "present"])
    assert str(caught.value) == (
        f"{manifest}: the manifest names inputs/outputs that pair.onnx does not have (past, "
        "present); the manifest and ONNX file do not belong together")
    with pytest.raises(ModelFormatError) as caught:
        check_io_names(session, graph_file, manifest, ["x"], ["z"])
    assert str(caught.value) == (
        f"{manifest}: pair.onnx has inputs the manifest does not name (h); the manifest and "
        "ONNX file do not belong together")


def test_float_type_follows_the_graph(graph_file: Path) -> None:
    types = {i.name: i.type for i in ort.InferenceSession(str(graph_file)).get_inputs()}
    assert float_type(types["x"]) is np.float32
    assert float_type(types["h"]) is np.float16
    assert float_type("tensor(double)") is np.float32  # anything else is fed as float32


def test_the_seq2seq_loader_does_not_import_the_decoder_loader() -> None:
    """engine.model imports engine.seq2seq, never the other way round (no lazy import cycle)."""
    code = "import sys, engine.seq2seq; print('engine.model' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[2], timeout=120, check=True)
    assert result.stdout.strip() == "False"
