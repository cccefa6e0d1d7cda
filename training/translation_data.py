"""Parallel corpora for translation training: TSV and TMX readers and the held-out split.

TSV is ``source<TAB>target`` per line, UTF-8 (a BOM is fine). TMX is XML, parsed with expat under
the rules of the security baseline: entity declarations and DTD internal subsets are refused
before anything is expanded (billion laughs, external entities); a bare ``<!DOCTYPE tmx SYSTEM
"tmx14.dtd">``, which translation tools write and expat never fetches, is accepted. Every error is
one line that names the file and, where there is one, the line.
"""

from __future__ import annotations

import logging
import random
import re
from dataclasses import dataclass
from pathlib import Path
from xml.parsers import expat

from engine.errors import ConfigError
from training.data import MAX_CORPUS_BYTES

logger = logging.getLogger(__name__)

# A practical BCP-47 check: primary language, then subtags (script, region, variants).
_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
_INLINE_CODES = frozenset({"bpt", "ept", "ph", "it", "ut"})  # native markup inside <seg>


@dataclass
class ParallelCorpus:
    """Sentence pairs read from one file."""

    path: Path
    pairs: list[tuple[str, str]]  # (source, target), both non-empty
    source_language: str  # BCP-47 tag, "" when unknown (a TSV without --src)
    target_language: str
    skipped_empty: int = 0  # empty lines, and pairs with an empty side
    skipped_incomplete: int = 0  # TMX units without a segment in both languages

    def describe(self) -> str:
        parts = [f"{len(self.pairs)} pairs"]
        if self.skipped_empty:
            parts.append(f"{self.skipped_empty} empty lines or pairs skipped")
        if self.skipped_incomplete:
            parts.append(f"{self.skipped_incomplete} units without both languages skipped")
        return f"{self.path}: " + ", ".join(parts)


def normalize_tag(tag: str, option: str) -> str:
    """A BCP-47 tag in canonical case (``zh-Hant-TW``); ``_`` is accepted for ``-``.

    Raises:
        ConfigError: not a language tag.
    """
    cleaned = tag.strip().replace("_", "-")
    if not _TAG.match(cleaned):
        raise ConfigError(f"{option} {tag!r} is not a BCP-47 language tag; use e.g. en, de, "
                          "zh-Hans, pt-BR")
    first, *rest = cleaned.split("-")
    subtags = [first.lower()]
    for part in rest:
        if len(part) == 4 and part.isalpha():
            subtags.append(part.title())  # script
        elif len(part) == 2 and part.isalpha():
            subtags.append(part.upper())  # region
        else:
            subtags.append(part.lower())
    return "-".join(subtags)


def read_pairs(path: Path, source_language: str | None = None,
               target_language: str | None = None) -> ParallelCorpus:
    """Reads a TSV or TMX file (TMX by its ``.tmx`` suffix or an XML start).

    Args:
        path: the corpus file.
        source_language, target_language: BCP-47 tags. TMX picks ``<tuv xml:lang>`` by them
            (``en`` also matches ``en-US``); for TSV they are only recorded.

    Raises:
        ConfigError: missing, empty, too large or malformed file; a language not in the TMX.
    """
    src = normalize_tag(source_language, "--src") if source_language else None
    tgt = normalize_tag(target_language, "--tgt") if target_language else None
    if src and tgt and src == tgt:
        raise ConfigError(f"--src and --tgt are both {src}; give two different languages")
    if not path.is_file():
        raise ConfigError(f"{path}: file not found; pass --pairs FILE (TSV or TMX)")
    if path.stat().st_size > MAX_CORPUS_BYTES:
        raise ConfigError(f"{path}: over 2 GiB; split it into smaller files")
    raw = path.read_bytes()
    start = raw.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not start or not raw.decode("utf-8", "replace").strip(" \t\r\n\ufeff"):
        raise ConfigError(f"{path}: the file is empty; give it source<TAB>target lines or a TMX")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16: fine for XML, not for TSV
        start = raw.decode("utf-16", "replace").lstrip("\ufeff \t\r\n").encode()
        if not start.startswith(b"<"):
            raise ConfigError(f"{path}: UTF-16 text; save the TSV as UTF-8")
    if path.suffix.lower() == ".tmx" or start.startswith((b"<?xml", b"<tmx")):
        corpus = _read_tmx(path, raw, src, tgt)
    else:
        corpus = _read_tsv(path, raw, src or "", tgt or "")
    if not corpus.pairs:
        raise ConfigError(f"{path}: no usable sentence pairs ({corpus.describe()})")
    return corpus


def _read_tsv(path: Path, raw: bytes, src: str, tgt: str) -> ParallelCorpus:
    corpus = ParallelCorpus(path, [], src, tgt)
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    lines = raw.split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # what follows the final newline is not a line
    for number, line_bytes in enumerate(lines, start=1):
        if b"\x00" in line_bytes:
            raise ConfigError(f"{path}:{number}: NUL byte; this looks like a binary or UTF-16 "
                              "file, not UTF-8 TSV")
        try:
            line = line_bytes.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError as error:
            raise ConfigError(
                f"{path}:{number}: not UTF-8 (byte 0x{line_bytes[error.start]:02x} at column "
                f"{error.start + 1}); the file mixes encodings? convert it to UTF-8"
            ) from None
        if not line.strip():
            corpus.skipped_empty += 1
            continue
        columns = line.split("\t")
        if len(columns) != 2:
            raise ConfigError(f"{path}:{number}: expected 2 tab-separated columns "
                              f"(source<TAB>target), found {len(columns)}")
        source, target = columns[0].strip(), columns[1].strip()
        if source and target:
            corpus.pairs.append((source, target))
        else:
            corpus.skipped_empty += 1
    return corpus


def _matches(wanted: str, tag: str) -> bool:
    """``en`` matches ``en`` and ``en-US``; ``en-US`` matches only itself (case-insensitive)."""
    tag = tag.lower().replace("_", "-")
    wanted = wanted.lower()
    return tag == wanted or tag.startswith(wanted + "-")


class _TMXReader:
    """expat callbacks that collect ``{language: text}`` per ``<tu>``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.parser = expat.ParserCreate()
        self.parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        self.parser.StartDoctypeDeclHandler = self._doctype
        self.parser.EntityDeclHandler = self._entity
        self.parser.StartElementHandler = self._start
        self.parser.EndElementHandler = self._end
        self.parser.CharacterDataHandler = self._text
        self.depth, self.skip = 0, 0
        self.header_source: str | None = None
        self.units: list[dict[str, str]] = []
        self.languages: dict[str, None] = {}  # insertion-ordered set, as written in the file
        self.unit: dict[str, str] | None = None
        self.language: str | None = None
        self.segment: list[str] | None = None

    def _refuse(self, what: str) -> ConfigError:
        return ConfigError(f"{self.path}:{self.parser.CurrentLineNumber}: the TMX declares "
                           f"{what}, which Nightlamp refuses (unsafe XML); remove the DTD part")

    def _doctype(self, name: str, system_id: str | None, public_id: str | None,
                 has_internal_subset: int) -> None:
        if has_internal_subset:
            raise self._refuse("an internal DTD subset (<!DOCTYPE ... [ ... ]>)")

    def _entity(self, name: str, *_: object) -> None:
        raise self._refuse(f"an entity (<!ENTITY {name} ...>)")

    def _start(self, name: str, attributes: dict[str, str]) -> None:
        self.depth += 1
        line = self.parser.CurrentLineNumber
        if self.depth == 1 and name != "tmx":
            raise ConfigError(f"{self.path}:{line}: not a TMX file (the root element is "
                              f"<{name}>, expected <tmx>)")
        if name == "header":
            self.header_source = attributes.get("srclang")
        elif name == "tu":
            self.unit = {}
        elif name == "tuv" and self.unit is not None:
            language = attributes.get("xml:lang") or attributes.get("lang")
            if not language:
                raise ConfigError(f"{self.path}:{line}: <tuv> without xml:lang; every variant "
                                  "needs its language")
            self.language = language
            self.languages.setdefault(language)
        elif name == "seg" and self.language is not None:
            self.segment = []
        elif name in _INLINE_CODES and self.segment is not None:
            self.skip += 1

    def _end(self, name: str) -> None:
        self.depth -= 1
        if name in _INLINE_CODES and self.segment is not None:
            self.skip -= 1
        elif name == "seg" and self.segment is not None:
            assert self.unit is not None and self.language is not None
            self.unit.setdefault(self.language, " ".join("".join(self.segment).split()))
            self.segment = None
        elif name == "tuv":
            self.language = None
        elif name == "tu" and self.unit is not None:
            self.units.append(self.unit)
            self.unit = None

    def _text(self, data: str) -> None:
        if self.segment is not None and not self.skip:
            self.segment.append(data)

    def parse(self, raw: bytes) -> None:
        try:
            self.parser.Parse(raw, True)
        except expat.ExpatError as error:
            reason = expat.ErrorString(error.code)
            raise ConfigError(f"{self.path}:{error.lineno}: corrupt TMX ({reason} at column "
                              f"{error.offset + 1}); fix the XML or export it again") from None


def _pick(unit: dict[str, str], wanted: str) -> str | None:
    for tag, text in unit.items():  # an exact tag first, then a more specific one (en-US)
        if tag.lower().replace("_", "-") == wanted.lower():
            return text
    return next((text for tag, text in unit.items() if _matches(wanted, tag)), None)


def _tmx_languages(reader: _TMXReader, src: str | None, tgt: str | None) -> tuple[str, str]:
    """Source and target tags: the ones asked for, else the header's srclang and the other."""
    path, found = reader.path, list(reader.languages)
    listed = ", ".join(found) or "none"
    for option, wanted in (("--src", src), ("--tgt", tgt)):
        if wanted and not any(_matches(wanted, tag) for tag in found):
            raise ConfigError(f"{path}: language {wanted!r} ({option}) is not in this TMX "
                              f"(languages found: {listed})")
    if src and tgt:
        return src, tgt
    tags = list(dict.fromkeys(normalize_tag(tag, f"{path}: xml:lang") for tag in found))
    header = reader.header_source
    if not src and header and header != "*all*" and any(_matches(header, t) for t in tags) \
            and not (tgt and _matches(tgt, header)):
        src = normalize_tag(header, f"{path}: header srclang")
    if not src:
        others = [tag for tag in tags if not (tgt and _matches(tgt, tag))]
        src = others[0] if len(others) == 1 else None
    if src and not tgt:
        others = [tag for tag in tags if not _matches(src, tag)]
        tgt = others[0] if len(others) == 1 else None
    if not src or not tgt:
        raise ConfigError(f"{path}: pass --src and --tgt to choose the languages "
                          f"(languages found: {listed})")
    return src, tgt


def _read_tmx(path: Path, raw: bytes, src: str | None, tgt: str | None) -> ParallelCorpus:
    reader = _TMXReader(path)
    reader.parse(raw)
    if not reader.units:
        raise ConfigError(f"{path}: the TMX has no translation units (<tu>); nothing to train on")
    src, tgt = _tmx_languages(reader, src, tgt)
    corpus = ParallelCorpus(path, [], src, tgt)
    for unit in reader.units:
        source, target = _pick(unit, src), _pick(unit, tgt)
        if source is None or target is None:
            corpus.skipped_incomplete += 1
        elif source and target:
            corpus.pairs.append((source, target))
        else:
            corpus.skipped_empty += 1
    return corpus


def split_pairs(count: int, seed: int, fraction: float = 0.05, cap: int = 1000,
                ) -> tuple[list[int], list[int]]:
    """Seeded shuffle of pair indices into (train, held-out): ``fraction`` held out, at least
    one and at most ``cap``, and always at least one pair left to train on.

    Raises:
        ConfigError: fewer than two pairs.
    """
    if count < 2:
        raise ConfigError(f"only {count} sentence pair(s); at least 2 are needed (one to train "
                          "on, one held out), and thousands to learn anything")
    order = list(range(count))
    random.Random(seed).shuffle(order)
    held_out = min(cap, max(1, round(count * fraction)), count - 1)
    return sorted(order[held_out:]), sorted(order[:held_out])
