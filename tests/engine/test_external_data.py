"""ONNX external data may not leave the model folder: ``../``, absolute paths and links out.

ONNX Runtime checks this itself from 1.24 on (pyproject.toml requires a version that does); these
tests pin that a hostile model folder ends in one line, whichever runtime is installed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, numpy_helper

from engine.errors import ModelFormatError
from engine.model import load_model


def _with_external_weight(source: Path, target: Path, location: str, outside: Path) -> Path:
    """A copy of the model folder whose first weight is read from ``location``; the weight's
    bytes are written to ``outside`` (a file outside the folder)."""
    folder = Path(shutil.copytree(source, target))
    model = onnx.load(folder / "model.onnx")
    tensor = next(t for t in model.graph.initializer if t.data_type == TensorProto.FLOAT
                  and numpy_helper.to_array(t).size >= 4)
    data = numpy_helper.to_array(tensor).tobytes()
    outside.write_bytes(data)
    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    tensor.data_location = TensorProto.EXTERNAL
    del tensor.external_data[:]
    for key, value in (("location", location), ("offset", "0"), ("length", str(len(data)))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    onnx.save(model, folder / "model.onnx")
    return folder


@pytest.mark.parametrize("how", ["parent", "absolute", "link"])
def test_external_data_outside_the_folder_is_refused(transformer_model_dir: Path,
                                                     tmp_path: Path, how: str) -> None:
    outside = tmp_path / "outside.bin"
    location = {"parent": "../outside.bin", "absolute": str(outside), "link": "weights.bin"}[how]
    folder = _with_external_weight(transformer_model_dir, tmp_path / "model", location, outside)
    if how == "link":
        (folder / "weights.bin").symlink_to(outside)
    with pytest.raises(ModelFormatError, match=r"model\.onnx: ONNX Runtime cannot load this file "
                                               r"\(.*(escapes model directory|Absolute path)"):
        load_model(folder, device="cpu")


def test_external_data_inside_the_folder_loads(transformer_model_dir: Path,
                                               tmp_path: Path) -> None:
    # The control: the same weight in a file inside the folder is read as usual.
    folder = tmp_path / "model"
    _with_external_weight(transformer_model_dir, folder, "weights.bin", tmp_path / "w.bin")
    shutil.move(tmp_path / "w.bin", folder / "weights.bin")
    assert load_model(folder, device="cpu").manifest.name
