"""The model store's one way to remove a model (``nightlamp models remove`` and the app use it)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from engine.errors import ConfigError, ModelNotFoundError
from engine.store import installed_models, models_dir, remove_model


def _install(name: str) -> Path:
    folder = models_dir() / name
    folder.mkdir(parents=True)
    (folder / "nightlamp.json").write_text("{}", encoding="utf-8")
    return folder


def test_removes_an_installed_folder(_isolated_home: Path) -> None:
    folder = _install("tiny")
    _install("kept")
    removed = remove_model("tiny")
    assert removed.folder == folder and removed.link_target is None
    assert not folder.exists() and installed_models() == ["kept"]


def test_a_linked_entry_loses_only_its_link(tmp_path: Path, _isolated_home: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "nightlamp.json").write_text("{}", encoding="utf-8")
    models_dir().mkdir(parents=True)
    link = models_dir() / "linked"
    link.symlink_to(target, target_is_directory=True)
    removed = remove_model("linked")
    assert removed.folder == link and removed.link_target == target
    assert not link.is_symlink() and not link.exists()
    assert (target / "nightlamp.json").read_text(encoding="utf-8") == "{}"


@pytest.mark.parametrize("name", ["../..", "..", "../canary", ".", "", "a/../../canary", "a\\b"])
def test_path_like_names_are_refused(name: str, _isolated_home: Path) -> None:
    _install("kept")
    canary = _isolated_home / "canary"
    canary.mkdir()
    with pytest.raises(ConfigError, match="is not a plain folder name") as caught:
        remove_model(name)
    assert "\n" not in str(caught.value)
    assert canary.is_dir() and (models_dir() / "kept").is_dir()


def test_a_name_not_installed_is_model_not_found(_isolated_home: Path) -> None:
    _install("kept")
    with pytest.raises(ModelNotFoundError, match=r"no model named 'gone' .*installed: kept"):
        remove_model("gone")


def test_a_bundled_model_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    _isolated_home: Path) -> None:
    shipped = tmp_path / "bundle" / "models" / "shipped"
    shipped.mkdir(parents=True)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path / "bundle"), raising=False)
    with pytest.raises(ConfigError, match="ships with the app") as caught:
        remove_model("shipped")
    assert str(caught.value).endswith("; set another model as default instead")
    assert "--" not in caught.value.for_app()
    assert shipped.is_dir()


def test_a_folder_the_os_refuses_to_delete_is_a_one_line_error(
        monkeypatch: pytest.MonkeyPatch, _isolated_home: Path) -> None:
    folder = _install("locked")

    def refuse(path: object, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(shutil, "rmtree", refuse)
    with pytest.raises(ConfigError) as caught:
        remove_model("locked")
    message = str(caught.value)
    assert message == (f"{folder}: cannot remove it (Permission denied); check its permissions "
                       "and remove it by hand")
    assert folder.is_dir()
