"""Builds the summarization evaluation set from the Python 3.11 documentation (Debian package).

    python benchmarks/summarization/prepare.py [--deb FILE] [--force]

Downloads ``python3.11-doc`` with ``apt-get download`` into ~/.cache/nightlamp-bench/ (once),
reads the reST sources under usr/share/doc/python3.11/html/_sources/ straight out of the .deb
(standard library only: ar + tar.xz) and writes, for every document that carries an
author-written summary, ``data/<name>.txt`` (the document without that summary) and
``data/<name>.ref.txt`` (the summary), both as plain text made by ``rst_text``, plus
``data/manifest.json`` (package version and sha256, words per file). See SOURCES.md.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

from rst_text import link_targets, rst_to_text, section_labels

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
CACHE = Path.home() / ".cache" / "nightlamp-bench"
PACKAGE = "python3.11-doc"
SOURCES = "./usr/share/doc/python3.11/html/_sources/"
MIN_REFERENCE_WORDS = 10  # whatsnew/3.8 has an empty highlights section


@dataclass(frozen=True)
class Spec:
    """Where one document's reference summary sits in its reST source."""

    name: str  # file stem under data/
    path: str  # under _sources/
    kind: str  # "topic": a ``.. topic:: Abstract`` block; "section": a titled section
    title: str  # topic argument, or the title of the summary section
    within: str = ""  # "section": only this enclosing section is the document


SPECS = (
    *(Spec(f"howto-{stem}", f"howto/{stem}.rst.txt", "topic", "Abstract") for stem in (
        "annotations", "clinic", "curses", "isolating-extensions", "pyporting", "regex",
        "sockets")),
    Spec("howto-ipaddress", "howto/ipaddress.rst.txt", "topic", "Overview"),
    Spec("howto-descriptor", "howto/descriptor.rst.txt", "section", "Abstract",
         within="Technical Tutorial"),
    *(Spec(f"whatsnew-{version}", f"whatsnew/{version}.rst.txt", "section",
           "Summary -- Release highlights")
      for version in ("3.3", "3.4", "3.5", "3.6", "3.7", "3.8", "3.9", "3.10", "3.11")),
)


def download(cache: Path) -> Path:
    """The cached .deb, fetched with ``apt-get download`` the first time."""
    found = sorted(cache.glob(f"{PACKAGE}_*_all.deb"))
    if found:
        return found[-1]
    cache.mkdir(parents=True, exist_ok=True)
    print(f"downloading {PACKAGE} into {cache} ...", file=sys.stderr)
    try:
        subprocess.run(["apt-get", "download", PACKAGE], cwd=cache, check=True)
    except (OSError, subprocess.CalledProcessError) as error:
        sys.exit(f"cannot download {PACKAGE} ({error}); on a non-Debian machine fetch the .deb "
                 f"from https://packages.debian.org/bookworm/all/{PACKAGE}/download and pass "
                 "--deb FILE")
    found = sorted(cache.glob(f"{PACKAGE}_*_all.deb"))
    if not found:
        sys.exit(f"apt-get download left no {PACKAGE}_*_all.deb in {cache}")
    return found[-1]


def read_sources(deb: Path) -> dict[str, str]:
    """Every reST file under _sources/ in the .deb's data.tar.xz (nothing is written to disk)."""
    data = deb.read_bytes()
    if not data.startswith(b"!<arch>\n"):
        sys.exit(f"{deb}: not a Debian package (no ar header)")
    offset, payload = 8, None
    while offset + 60 <= len(data):  # ar members: 60-byte header, data padded to even size
        name = data[offset : offset + 16].decode().strip().rstrip("/")
        size = int(data[offset + 48 : offset + 58].decode().strip())
        if name.startswith("data.tar"):
            payload = data[offset + 60 : offset + 60 + size]
            break
        offset += 60 + size + (size % 2)
    if payload is None:
        sys.exit(f"{deb}: no data.tar member")
    found = {}
    with tarfile.open(fileobj=io.BytesIO(payload)) as archive:
        for member in archive:
            relative = member.name.removeprefix(SOURCES)
            file = archive.extractfile(member) if member.isfile() else None
            if file is not None and member.name.startswith(SOURCES) and relative.endswith(".txt"):
                found[relative] = file.read().decode("utf-8")
    return found


def _title_at(lines: list[str], i: int) -> str | None:
    """The underline character if line ``i`` is a section title underlined on the next line."""
    if i + 1 < len(lines) and lines[i].strip():
        under = lines[i + 1].rstrip()
        if (len(under) >= 3 and len(set(under)) == 1 and under[0] in "=-~^*#\"'+"
                and len(under) >= len(lines[i].rstrip()) - 1):
            return under[0]
    return None


def _section(lines: list[str], title: str) -> tuple[int, int]:
    """Line range of the section with this title (up to the next title of the same level)."""
    for start, line in enumerate(lines):
        char = _title_at(lines, start)
        if char and line.strip().lower() == title.lower():
            end = start + 2
            while end < len(lines) and _title_at(lines, end) != char:
                end += 1
            return start, end
    raise ValueError(f"no section titled {title!r}")


def _topic(lines: list[str], title: str) -> tuple[int, int]:
    """Line range of ``.. topic:: <title>`` and its indented body."""
    start = lines.index(f".. topic:: {title}")
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or lines[end][0] == " "):
        end += 1
    return start, end


def split(spec: Spec, source: str, labels: dict[str, str]) -> tuple[str, str]:
    """(document text, reference text) for one spec; ``labels`` resolve ``:ref:`` roles."""
    lines = source.splitlines()
    targets = link_targets(source)
    if spec.within:
        first, last = _section(lines, spec.within)
        lines = lines[first:last]
    start, end = (_topic if spec.kind == "topic" else _section)(lines, spec.title)
    body = lines[start + 1 : end] if spec.kind == "topic" else lines[start + 2 : end]
    reference = rst_to_text("\n".join(body), targets, labels)
    document = rst_to_text("\n".join(lines[:start] + lines[end:]), targets, labels)
    return document, reference


def words(text: str) -> int:
    return len(re.findall(r"\w+", text))


def prepare(deb: Path | None = None, out: Path = DATA, force: bool = False) -> Path:
    """Writes the evaluation set into ``out`` unless it is already there; returns ``out``."""
    manifest_path = out / "manifest.json"
    if manifest_path.exists() and not force:
        return out
    deb = deb or download(CACHE)
    sources = read_sources(deb)
    missing = {spec.path for spec in SPECS} - sources.keys()
    if missing:
        sys.exit(f"{deb}: missing {', '.join(sorted(missing))}")
    labels: dict[str, str] = {}
    for source in sources.values():  # labels are global across the documentation
        labels.update(section_labels(source))
    out.mkdir(parents=True, exist_ok=True)
    documents, skipped = [], []
    for spec in SPECS:
        document, reference = split(spec, sources[spec.path], labels)
        if words(reference) < MIN_REFERENCE_WORDS:
            skipped.append({"name": spec.name, "reason": f"reference has {words(reference)} "
                            f"words (< {MIN_REFERENCE_WORDS})"})
            continue
        (out / f"{spec.name}.txt").write_text(document, encoding="utf-8")
        (out / f"{spec.name}.ref.txt").write_text(reference, encoding="utf-8")
        documents.append({"name": spec.name, "source": f"{SOURCES}{spec.path}",
                          "reference": f"{spec.kind} {spec.title!r}"
                          + (f" within {spec.within!r}" if spec.within else ""),
                          "words": words(document), "reference_words": words(reference)})
    manifest = {"package": deb.name, "sha256": hashlib.sha256(deb.read_bytes()).hexdigest(),
                "documents": documents, "skipped": skipped}
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deb", type=Path, help="use this python3.11-doc .deb, no download")
    parser.add_argument("--out", type=Path, default=DATA)
    parser.add_argument("--force", action="store_true", help="rebuild even if data exists")
    args = parser.parse_args()
    out = prepare(args.deb, args.out, args.force)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    for doc in manifest["documents"]:
        print(f"{doc['name']:28} {doc['words']:6} words, reference {doc['reference_words']:4}")
    for doc in manifest["skipped"]:
        print(f"{doc['name']:28} skipped: {doc['reason']}")
    total = sum(doc["words"] for doc in manifest["documents"])
    print(f"{len(manifest['documents'])} documents, {total} words; {manifest['package']}")


if __name__ == "__main__":
    main()
