"""The dependency rule: engine never imports torch, PySide6, onnx, training or desktop; desktop
never imports onnxruntime or tokenizers. Checked at run time in a fresh interpreter and
statically over the source."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ENGINE_FORBIDDEN = {"torch", "PySide6", "shiboken6", "onnx", "training", "desktop"}
DESKTOP_FORBIDDEN = {"onnxruntime", "tokenizers"}

IMPORT_ENGINE = """
import json, sys
import engine, engine.generation, engine.model, engine.cli.main
engine.cli.main.build_parser()
print(json.dumps(sorted(sys.modules)))
"""


def top_level(module: str) -> str:
    return module.split(".")[0]


@pytest.fixture(scope="module")
def loaded_modules() -> set[str]:
    result = subprocess.run([sys.executable, "-c", IMPORT_ENGINE], capture_output=True,
                            text=True, cwd=REPO, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout))


def test_engine_import_loads_no_torch_qt_or_onnx(loaded_modules: set[str]) -> None:
    tops = {top_level(m) for m in loaded_modules}
    assert {"engine", "onnxruntime", "tokenizers", "jinja2", "numpy"} <= tops  # it did run
    assert tops.isdisjoint({"torch", "PySide6", "shiboken6", "onnx", "safetensors", "tqdm"}), \
        sorted(tops & {"torch", "PySide6", "shiboken6", "onnx", "safetensors", "tqdm"})


def test_cli_parser_registers_training_commands_without_importing_torch(
        loaded_modules: set[str]) -> None:
    # build_parser imports training.cli by name for its subcommands; that module must stay light.
    assert "training.cli" in loaded_modules
    assert {m for m in loaded_modules if top_level(m) == "training"} <= {"training",
                                                                         "training.cli"}


def python_files(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import statement, wherever it is in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return sorted(found)


def dynamic_imports(path: Path) -> list[tuple[int, str]]:
    """(line, source) of importlib.import_module / __import__ calls."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = ast.unparse(node.func)
            if name.endswith("import_module") or name == "__import__":
                found.append((node.lineno, ast.unparse(node)))
    return sorted(found)


def test_engine_sources_do_not_import_forbidden_packages() -> None:
    files = python_files("engine")
    assert REPO / "engine" / "generation.py" in files
    offenders = [
        f"{path.relative_to(REPO)}:{line}: {module}"
        for path in files
        for line, module in imported_modules(path)
        if top_level(module) in ENGINE_FORBIDDEN
    ]
    assert offenders == []


def test_engine_imports_by_name_only_in_the_cli_entry_point() -> None:
    calls = {
        f"{path.relative_to(REPO).as_posix()}": dynamic_imports(path)
        for path in python_files("engine")
    }
    assert {name for name, found in calls.items() if found} == {"engine/cli/main.py",
                                                                "engine/cli/models.py"}
    # ... and only for the registered command modules and the importer, never a literal heavy
    # package.
    assert [source for _, source in calls["engine/cli/main.py"]] == [
        "importlib.import_module(module_name)"]
    assert {source for _, source in calls["engine/cli/models.py"]} == {
        "importlib.import_module(IMPORTER_MODULE)"}


def test_desktop_sources_do_not_import_inference_libraries() -> None:
    offenders = [
        f"{path.relative_to(REPO)}:{line}: {module}"
        for path in python_files("desktop")
        for line, module in imported_modules(path)
        if top_level(module) in DESKTOP_FORBIDDEN
    ]
    assert offenders == []


def test_the_scanner_sees_nested_and_from_imports(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import os\n"
        "from onnx import helper\n"
        "def f():\n"
        "    import torch.nn as nn\n"
        "    from . import sibling\n"
        "    import importlib; importlib.import_module('PySide6')\n",
        encoding="utf-8",
    )
    assert imported_modules(sample) == [(1, "os"), (2, "onnx"), (4, "torch.nn"), (6, "importlib")]
    assert dynamic_imports(sample) == [(6, "importlib.import_module('PySide6')")]
    assert top_level("onnxruntime.capi") == "onnxruntime" != "onnx"
