"""The local model store: where model folders live and how a model name becomes a folder.

``$NIGHTLAMP_HOME`` if set, else the platform's user data folder; models are in ``models/NAME``.
Nothing is created until something is written.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from engine.errors import ModelNotFoundError

DEFAULT_MODEL_NAME = "smollm2-135m-instruct"
_DEFAULT_FILE = "default-model"


def home() -> Path:
    configured = os.environ.get("NIGHTLAMP_HOME")
    if configured:
        return Path(configured).expanduser()
    return Path(platformdirs.user_data_dir("nightlamp", appauthor=False))


def models_dir() -> Path:
    return home() / "models"


def installed_models() -> list[str]:
    folder = models_dir()
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def default_model_name() -> str | None:
    """The model to use when none is given: the one set as default, else the bundled default."""
    marker = home() / _DEFAULT_FILE
    if marker.is_file():
        name = marker.read_text(encoding="utf-8").strip()
        if name in installed_models():
            return name
    return DEFAULT_MODEL_NAME if DEFAULT_MODEL_NAME in installed_models() else None


def set_default_model(name: str) -> None:
    home().mkdir(parents=True, exist_ok=True)
    (home() / _DEFAULT_FILE).write_text(name + "\n", encoding="utf-8")


def resolve_model(spec: str | os.PathLike[str] | None) -> Path:
    """A folder path, or a model name in the store, or None for the default model.

    Raises:
        ModelNotFoundError: names what was looked for and where.
    """
    if spec is None:
        name = default_model_name()
        if name is None:
            raise ModelNotFoundError(
                f"no model given and no default model in {models_dir()}; pass -m MODEL_FOLDER "
                "(e.g. one made by 'nightlamp export')"
            )
        return models_dir() / name
    path = Path(spec).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise ModelNotFoundError(f"{path} is a file; a model is a folder (pass the folder)")
    by_name = models_dir() / str(spec)
    if os.sep not in str(spec) and by_name.is_dir():
        return by_name
    known = ", ".join(installed_models()) or "none"
    raise ModelNotFoundError(
        f"model {str(spec)!r} not found: no such folder, and not a name in {models_dir()} "
        f"(installed: {known})"
    )
