"""The dependency rule, checked at run time in fresh interpreters and statically over the source.

    commands -> desktop, training, convert, engine      (the `nightlamp` command: the top)
    desktop  -> engine                                  (never onnxruntime or tokenizers)
    training -> convert, engine                         (torch lives here only)
    convert  -> engine                                  (torch-free: the app ships it)
    engine   -> nothing of ours                         (no argparse, no Qt, no torch, no onnx)

None of them imports a package above it, not even by a module-name string.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OURS = {"engine", "convert", "training", "desktop", "commands"}
FORBIDDEN = {
    "engine": {"torch", "PySide6", "shiboken6", "onnx", "argparse"} | (OURS - {"engine"}),
    "convert": {"torch", "PySide6", "shiboken6", "training", "desktop", "commands"},
    "training": {"PySide6", "shiboken6", "desktop", "commands"},
    "desktop": {"onnxruntime", "tokenizers", "torch", "onnx", "training", "convert",
                "commands"},
}

IMPORT_ENGINE = """
import json, sys
import engine, engine.generation, engine.model, commands.main
commands.main.build_parser()
print(json.dumps(sorted(sys.modules)))
"""

# What the app bundle runs, imported with torch made unimportable: none of it may need torch.
IMPORT_APP_WITHOUT_TORCH = """
import importlib, json, pkgutil, sys

class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoTorch())
import commands, convert, desktop, engine
names = []
for package in (engine, convert, desktop, commands):
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if info.name.endswith("__main__"):
            continue
        importlib.import_module(info.name)
        names.append(info.name)
import commands.main
commands.main.build_parser()
print(json.dumps({"imported": names, "modules": sorted(sys.modules)}))
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


def test_the_command_registers_every_subcommand_without_heavy_imports(
        loaded_modules: set[str]) -> None:
    # build_parser imports every command module; those must stay light (no trainer, no graphs).
    assert {"commands.train", "commands.models", "commands.gui"} <= loaded_modules
    assert not {m for m in loaded_modules if top_level(m) in {"training", "convert"}}


def test_nothing_the_app_imports_needs_torch() -> None:
    result = subprocess.run([sys.executable, "-c", IMPORT_APP_WITHOUT_TORCH],
                            capture_output=True, text=True, cwd=REPO, timeout=300, check=False,
                            env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert result.returncode == 0, result.stderr[-2000:]
    found = json.loads(result.stdout.splitlines()[-1])
    assert {"convert.importers.service", "convert.decoder_graph", "desktop.app",
            "commands.models", "engine.generation"} <= set(found["imported"])
    assert not any(top_level(m) == "torch" for m in found["modules"])


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


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_sources_do_not_import_packages_above_them(package: str) -> None:
    files = python_files(package)
    assert len(files) > 3
    offenders = [
        f"{path.relative_to(REPO)}:{line}: {module}"
        for path in files
        for line, module in imported_modules(path)
        if top_level(module) in FORBIDDEN[package]
    ]
    assert offenders == []


def package_names_in_strings(path: Path) -> list[tuple[int, str]]:
    """(line, text) of string constants that name one of our packages as a module
    ("training.cli", "desktop"), as importlib or a registry would use them."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    named = re.compile(rf"^({'|'.join(OURS)})(\.\w+)*$")
    return sorted((node.lineno, node.value) for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and isinstance(node.value, str)
                  and named.match(node.value))


@pytest.mark.parametrize("package", ["engine", "convert"])
def test_lower_packages_import_nothing_by_name(package: str) -> None:
    files = python_files(package)
    assert [(path.name, found) for path in files if (found := dynamic_imports(path))] == []
    above = OURS - {package}
    assert [(path.relative_to(REPO).as_posix(), line, text) for path in files
            for line, text in package_names_in_strings(path)
            if top_level(text) in above] == []


def test_only_the_command_imports_by_name() -> None:
    calls = {path.relative_to(REPO).as_posix(): dynamic_imports(path)
             for package in OURS for path in python_files(package)}
    assert {name for name, found in calls.items() if found} == {"commands/main.py",
                                                                "commands/train.py"}
    assert [source for _, source in calls["commands/main.py"]] == [
        "importlib.import_module(module_name)"]
    assert [source for _, source in calls["commands/train.py"]] == [
        "importlib.import_module(name)"]


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
    assert package_names_in_strings(sample) == []
    sample.write_text("NAME = 'training.cli'\nOTHER = 'desktop is nice'\n", encoding="utf-8")
    assert package_names_in_strings(sample) == [(1, "training.cli")]
    assert top_level("onnxruntime.capi") == "onnxruntime" != "onnx"
