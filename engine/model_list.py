"""What the model store holds, described for people: used by ``nightlamp models`` and the app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.formats import read_model_folder
from engine.store import default_model_name, installed_models, is_bundled, model_folder


def size_on_disk(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def describe_model(name: str) -> dict[str, Any]:
    """One installed model's facts (reads its manifest; raises if the folder is broken)."""
    folder = model_folder(name)
    manifest = read_model_folder(folder)
    return {
        "name": name, "architecture": manifest.architecture,
        "parameters": manifest.source.get("parameters"), "precision": manifest.precision,
        "size_mb": round(size_on_disk(folder) / 1e6, 1), "context": manifest.context_length,
        "tasks": list(manifest.tasks), "license": manifest.license, "path": str(folder),
        "default": name == default_model_name(), "bundled": is_bundled(name),
        "source": manifest.source,
    }


def list_models() -> list[dict[str, Any]]:
    """Every installed model; a broken folder is listed with an ``error`` instead of hiding
    the others."""
    rows = []
    for name in installed_models():
        try:
            rows.append(describe_model(name))
        except Exception as error:
            rows.append({"name": name, "error": str(error), "path": str(model_folder(name))})
    return rows
