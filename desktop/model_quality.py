"""Measured translation quality per model and language pair: where it is kept and how the
Models panel's measurement is run.

The measurement is ``nightlamp translate-eval -m NAME --json`` run as a child process through
``desktop.model_jobs`` (like imports): it loads its own copy of the model, so the worker thread
and the panels' models are left alone, and Cancel kills it at once. Its result is one JSON line;
the figures are kept in ``quality.json`` next to the model (``engine.translate.evaluate``
writes it atomically). Next to the model because they belong to those weights: removing the
model removes them, and re-importing it under the same name replaces the folder and drops
figures that no longer apply. A model the app bundle ships is read-only, so its figures go to
``NIGHTLAMP_HOME/quality/NAME.json`` instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.store import home
from engine.translate.evaluate import EvalResult, pair_key, read_quality, write_quality

QUALITY_FILE = "quality.json"


def quality_path(row: dict[str, Any]) -> Path:
    """Where a listed model's (``engine.model_list``) figures are kept."""
    if row.get("bundled"):
        return home() / "quality" / f"{row['name']}.json"
    return Path(row["path"]) / QUALITY_FILE


def measure_arguments(name: str, device: str) -> list[str]:
    """The ``nightlamp`` arguments that measure every built-in pair ``name`` translates."""
    return ["translate-eval", "-m", name, "--device", device or "auto", "--json"]


def parse_results(line: str) -> dict[str, EvalResult]:
    """The figures in ``translate-eval --json``'s output line, by pair key ("en→de").

    Raises:
        ValueError: the line is not that command's JSON.
    """
    data = json.loads(line)
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise ValueError("not translate-eval's output")
    return {pair_key(str(item["source"]), str(item["target"])):
            EvalResult(float(item["chrf"]), float(item["seconds"]), int(item["sentences"]))
            for item in data["results"]}


def load_figures(row: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The figures kept for a listed model ({} when none were measured)."""
    return read_quality(quality_path(row)) if "error" not in row else {}


def save_figures(row: dict[str, Any], figures: dict[str, EvalResult]) -> None:
    """Adds ``figures`` to the model's kept ones.

    Raises:
        OSError: the file cannot be written.
    """
    write_quality(quality_path(row), figures)
