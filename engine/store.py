"""The local model store: where model folders live and how a model name becomes a folder.

``$NIGHTLAMP_HOME`` if set, else the platform's user data folder; models are in ``models/NAME``.
Nothing is created until something is written. A packaged app may also ship models of its own
(``models/`` inside the bundle, read-only): they count as installed, and a model of the same
name in the user's store wins.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from engine.errors import ConfigError, ModelNotFoundError

DEFAULT_MODEL_NAME = "smollm2-135m-instruct"
_DEFAULT_FILE = "default-model"


def home() -> Path:
    configured = os.environ.get("NIGHTLAMP_HOME")
    if configured:
        return Path(configured).expanduser()
    return Path(platformdirs.user_data_dir("nightlamp", appauthor=False))


def models_dir() -> Path:
    return home() / "models"


def bundle_dir() -> Path | None:
    """The unpacked folder of a PyInstaller bundle (``sys._MEIPASS``), None from a checkout."""
    bundle = getattr(sys, "_MEIPASS", None)
    return Path(bundle) if bundle else None


def bundled_models_dir() -> Path | None:
    bundle = bundle_dir()
    return bundle / "models" if bundle is not None else None


def _names_in(folder: Path | None) -> set[str]:
    if folder is None or not folder.is_dir():
        return set()
    return {p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")}


def installed_models() -> list[str]:
    return sorted(_names_in(models_dir()) | _names_in(bundled_models_dir()))


def check_model_name(name: str, option: str = "NAME") -> str:
    """`name` if it can only mean a folder directly inside the store, else a one-line ConfigError.

    Refused: empty, hidden (``.`` / ``..`` / ``.x``), path separators or a drive colon (``../x``,
    ``a/b``, ``C:x``), control characters, over 100 characters.
    """
    if (not name or name.startswith(".") or any(c in name for c in "/\\:")
            or any(ord(c) < 0x20 or c == "\x7f" for c in name) or len(name) > 100):
        raise ConfigError(f"model name {name[:100]!r} is not a plain folder name (no path "
                          f"separators, no leading dot, at most 100 characters); pass another "
                          f"{option}")
    return name


def installed_folder(name: str) -> Path:
    """The folder of the installed model NAME (the user's store, else the bundle).

    Raises:
        ConfigError: NAME is not installed and is path-like (``../x``: never looked for).
        ModelNotFoundError: no model of that name is installed; the message lists those that are.
    """
    if name not in installed_models():
        check_model_name(name)
        raise ModelNotFoundError(f"no model named {name!r} in {models_dir()} (installed: "
                                 f"{', '.join(installed_models()) or 'none'})")
    return model_folder(name)


@dataclass(frozen=True)
class RemovedModel:
    """What :func:`remove_model` deleted."""

    folder: Path  # the store entry that is gone
    link_target: Path | None = None  # for a link put into the store: where it pointed (kept)


def remove_model(name: str) -> RemovedModel:
    """Deletes the installed model NAME from the user's store.

    A store entry that is a link (``ln -s ~/my-model models/x``) loses only the link: the folder
    it points to is left as it is. The app's own (bundled) models are never removed. Close any
    session on the model first: Windows can't delete files a session holds open.

    Raises:
        ConfigError: a path-like name, one of the app's own models, or a folder the OS refuses
            to delete (one line naming it).
        ModelNotFoundError: no model of that name is installed.
    """
    folder = installed_folder(name)
    if is_bundled(name):
        raise ConfigError(f"{name} ships with the app ({folder}) and can't be removed",
                          hint="set another model as default instead",
                          app_hint="set another model as the default instead")
    try:
        if folder.is_symlink():  # remove the link, never its target
            target = folder.readlink()
            folder.unlink()
            return RemovedModel(folder, target)
        shutil.rmtree(folder)
    except OSError as error:
        raise ConfigError(f"{folder}: cannot remove it ({error.strerror or error}); check its "
                          "permissions and remove it by hand") from None
    return RemovedModel(folder)


def model_folder(name: str) -> Path:
    """Where the installed model NAME is (the user's store, else the bundle); for a name not
    installed, where it would go."""
    own = models_dir() / name
    bundled = bundled_models_dir()
    if bundled is not None and not own.is_dir() and (bundled / name).is_dir():
        return bundled / name
    return own


def is_bundled(name: str) -> bool:
    """Whether NAME is one of the app's own models (not in the user's store)."""
    return model_folder(name).parent == bundled_models_dir()


def default_model_name() -> str | None:
    """The model to use when none is given: the one set as default, else the catalog's default
    model, else the first model the app bundle ships."""
    installed = installed_models()
    marker = home() / _DEFAULT_FILE
    if marker.is_file():
        name = marker.read_text(encoding="utf-8").strip()
        if name in installed:
            return name
    if DEFAULT_MODEL_NAME in installed:
        return DEFAULT_MODEL_NAME
    return min(_names_in(bundled_models_dir()), default=None)


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
            installed = installed_models()
            if not installed:
                raise ModelNotFoundError(
                    f"no model installed in {models_dir()}; run 'nightlamp models pull' to get "
                    "the default model (about 100 MB, once), or pass -m MODEL_FOLDER")
            raise ModelNotFoundError(
                f"no default model in {models_dir()}; pass -m NAME (installed: "
                f"{', '.join(installed)})")
        return model_folder(name)
    path = Path(spec).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise ModelNotFoundError(f"{path} is a file; a model is a folder (pass the folder)")
    by_name = model_folder(str(spec))
    if os.sep not in str(spec) and by_name.is_dir():
        return by_name
    known = ", ".join(installed_models()) or "none"
    raise ModelNotFoundError(
        f"model {str(spec)!r} not found: no such folder, and not a name in {models_dir()} "
        f"(installed: {known})"
    )
