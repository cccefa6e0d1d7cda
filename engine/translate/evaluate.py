"""How well a model translates a language pair, measured: chrF against reference translations.

``evaluate_pair`` translates source sentences with any ``Translator`` (answers cleaned of chatter
as the pipeline cleans them, ``answers.clean_answer``) and scores each against its reference with
``chrf.chrf``; the figure is the mean sentence chrF, 0 (nothing alike) to 1 (identical). It is
not sacrebleu's corpus chrF (which pools n-gram counts over all sentences) nor on its 0-100 scale,
but it ranks models and pairs the same way and needs no extra package.

The sentences come from the built-in set (``builtin_pairs``: ``resources/translation_eval/``, a
few dozen everyday sentences in English, German, French and Simplified Chinese) or from a user's
TSV file (``read_pairs``: ``source<TAB>reference`` per line). ``read_quality`` and
``write_quality`` keep the figures in a small JSON file (the app puts it next to the model).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from engine.callbacks import CountProgress, ShouldStop
from engine.errors import ConfigError, OperationCancelledError
from engine.store import bundle_dir
from engine.translate.answers import clean_answer
from engine.translate.chrf import chrf
from engine.translate.languages import base, check_tag
from engine.translate.translators import PairChecking, Translator, same_or_error

Pair = tuple[str, str]  # (source sentence, reference translation)
# The pairs the app measures with the built-in sentences.
BUILTIN_PAIRS = (("en", "de"), ("en", "fr"), ("en", "zh"), ("de", "en"), ("fr", "en"),
                 ("zh", "en"))
SENTENCES_FILE = "sentences.tsv"
MAX_PAIRS_BYTES = 4_000_000  # a user's pairs file: enough for tens of thousands of sentences
MAX_SENTENCE_CHARS = 2_000  # one line is one sentence; longer is not a sentence
QUALITY_FORMAT = 1


@dataclass(frozen=True)
class EvalResult:
    """One pair's measured quality.

    Attributes:
        chrf: the mean sentence chrF of the translations against the references, 0..1.
        seconds: wall-clock time of the translations.
        sentences: how many sentences were translated.
    """

    chrf: float
    seconds: float
    sentences: int

    def to_json(self) -> dict[str, Any]:
        return {"chrf": self.chrf, "seconds": round(self.seconds, 3),
                "sentences": self.sentences}


def evaluate_pair(translator: Translator, source: str, target: str, pairs: Sequence[Pair], *,
                  should_stop: ShouldStop | None = None,
                  progress: CountProgress | None = None) -> EvalResult:
    """Translates each pair's source sentence and scores it against the reference (chrF).

    Args:
        translator: any ``Translator`` (a loaded model's, or a test's fake).
        source: the sentences' language tag.
        target: the references' language tag.
        pairs: (source sentence, reference translation), at least one.
        should_stop: checked between batches (and by the translator within one).
        progress: called with (done, total) after each batch.

    Raises:
        ConfigError: bad tags, source == target, a pair the model does not translate, or no
            pairs.
        OperationCancelledError: ``should_stop`` returned True.
    """
    source, target = check_tag(source, "source"), check_tag(target, "target")
    same_or_error(source, target)
    if isinstance(translator, PairChecking):
        translator.check_pair(source, target)
    if not pairs:
        raise ConfigError("there are no sentences to evaluate on")
    started = time.perf_counter()
    size = max(1, int(getattr(translator, "batch_size", 1) or 1))
    scores: list[float] = []
    for start in range(0, len(pairs), size):
        if should_stop is not None and should_stop():
            raise OperationCancelledError("the evaluation was cancelled")
        batch = pairs[start:start + size]
        answers = translator.translate([text for text, _ in batch], source, target,
                                       should_stop)
        for (text, reference), answer in zip(batch, answers, strict=True):
            scores.append(chrf(clean_answer(answer, text), reference))
        if progress is not None:
            progress(len(scores), len(pairs))
    return EvalResult(round(sum(scores) / len(scores), 4), time.perf_counter() - started,
                      len(scores))


# The built-in sentences ------------------------------------------------------------------

def eval_dir() -> Path:
    """Where the built-in sentences are: the bundle's resources, or the checkout's."""
    bundle = bundle_dir()
    root = bundle if bundle is not None else Path(__file__).resolve().parents[2]
    return root / "resources" / "translation_eval"


def _builtin_table() -> tuple[list[str], list[list[str]]]:
    path = eval_dir() / SENTENCES_FILE
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise ConfigError(f"{path}: the built-in evaluation sentences are missing "
                          f"({error.strerror})",
                          hint="reinstall Nightlamp or pass --pairs FILE.tsv",
                          app_hint="reinstall Nightlamp") from None
    header, *rows = [line.split("\t") for line in lines if line.strip()]
    return [base(tag) for tag in header], rows


def builtin_languages() -> list[str]:
    """The languages of the built-in sentences (their file's header)."""
    return _builtin_table()[0]


def builtin_pairs(source: str, target: str) -> list[Pair]:
    """The built-in sentences in ``source`` with their ``target`` references.

    Raises:
        ConfigError: the built-in set lacks one of the languages (or its file is missing).
    """
    header, rows = _builtin_table()
    missing = [tag for tag in (source, target) if base(tag) not in header]
    if missing:
        raise ConfigError(f"the built-in sentences are in {', '.join(header)}, not "
                          f"{', '.join(missing)}", hint="pass --pairs FILE.tsv with your own",
                          app_hint="choose languages the built-in sentences have")
    first, second = header.index(base(source)), header.index(base(target))
    return [(row[first], row[second]) for row in rows]


# A user's own sentences ------------------------------------------------------------------

def parse_pairs(text: str, name: str = "pairs") -> list[Pair]:
    """``source<TAB>reference`` lines; blank lines and lines starting with ``#`` are skipped.

    Raises:
        ConfigError: one line naming the first bad line and what is wrong with it.
    """
    pairs: list[Pair] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 2:
            found = "no tab" if len(fields) == 1 else f"{len(fields) - 1} tabs"
            raise ConfigError(f"{name} line {number}: expected 'source<TAB>reference', found "
                              f"{found}")
        text_source, reference = fields[0].strip(), fields[1].strip()
        if not text_source or not reference:
            raise ConfigError(f"{name} line {number}: the "
                              f"{'source' if not text_source else 'reference'} is empty")
        if max(len(text_source), len(reference)) > MAX_SENTENCE_CHARS:
            raise ConfigError(f"{name} line {number}: longer than {MAX_SENTENCE_CHARS} "
                              "characters; put one sentence per line")
        pairs.append((text_source, reference))
    if not pairs:
        raise ConfigError(f"{name}: no 'source<TAB>reference' lines found")
    return pairs


def read_pairs(path: Path) -> list[Pair]:
    """A user's TSV file of pairs (UTF-8), checked by ``parse_pairs``.

    Raises:
        ConfigError: unreadable, too large, not UTF-8, or a bad line (one line says which).
    """
    path = Path(path)
    try:
        if path.stat().st_size > MAX_PAIRS_BYTES:
            raise ConfigError(f"{path}: larger than {MAX_PAIRS_BYTES // 1_000_000} MB; "
                              "evaluate on fewer sentences")
        data = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read it ({error.strerror})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{data[error.start]:02x} at offset "
                          f"{error.start}); convert it to UTF-8 first") from None
    return parse_pairs(text, str(path))


# Remembered figures ----------------------------------------------------------------------

def pair_key(source: str, target: str) -> str:
    """How a pair's figure is keyed in a quality file: "en→de" (tags may hold hyphens)."""
    return f"{source}→{target}"


def read_quality(path: Path) -> dict[str, dict[str, Any]]:
    """The figures kept in ``path`` by pair key ("en→de"); {} when there are none or the file
    is damaged (a hand-edited file must not break the list)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    pairs = data.get("pairs") if isinstance(data, dict) else None
    if not isinstance(pairs, dict):
        return {}
    return {key: value for key, value in pairs.items()
            if isinstance(key, str) and isinstance(value, dict)
            and isinstance(value.get("chrf"), (int, float))}


def write_quality(path: Path, figures: dict[str, EvalResult], data: str = "built-in") -> None:
    """Adds ``figures`` (by pair key) to those kept in ``path``, written atomically (a temporary
    file renamed over it: a crash leaves the old file or the new one, never half of one).

    Raises:
        OSError: the folder cannot be written.
    """
    path = Path(path)
    kept = read_quality(path)
    measured = datetime.now(timezone.utc).isoformat(timespec="seconds")
    for key, result in figures.items():
        kept[key] = {**result.to_json(), "data": data, "measured": measured}
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump({"format_version": QUALITY_FORMAT, "pairs": kept}, out,
                      ensure_ascii=False, indent=1)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
