"""A seeded parallel corpus that a tiny translation model can learn exactly: numbers and dates.

    .venv/bin/python benchmarks/translation/make_corpus.py --out /tmp/nl-tr/corpus
    ... make_corpus.py --task digits --train 30000 --held-out 500 --seed 7

Two tasks, both English source (cardinal numbers 0-99,999 in words, and dates in six phrasings):

- ``zh`` (en -> zh): numbers to Chinese numerals, dates to the Chinese date form::

      three hundred and forty-two               三百四十二
      forty-two thousand and seven              四万二千零七
      the fourth of July 2021                   2021年7月4日
      July 4th, 2021                            2021年7月4日

  Numerals follow the standard rules: one 零 for any run of zeros inside a number, 十 rather
  than 一十 at the start (十五, 十二万) but 一十 inside (一百一十), 二 (not the colloquial 两)
  before 千 and 万.
- ``digits`` (en -> zxx, "no linguistic content"): numbers to digits (``342``), dates to ISO
  8601 (``2021-07-04``).

English numbers use British "and" before the last two digits (``three hundred and forty-two``)
in about half the items and none in the rest; both phrasings map to the same target.

Split by value, not by sentence: a held-out number or date is never in the training file in any
phrasing. Numbers below 100 are never held out: they are the vocabulary (``seventeen``), which
no model can guess, while every held-out number (100-99,999) and date is a new combination of
words seen in training. Items are drawn half numbers, half dates; a number's digit count is drawn
with weights 1:2:4:4:4 for 1-5 digits so that short numbers are not swamped by five-digit ones.

Writes ``train.tsv`` and ``held_out.tsv`` (source<TAB>target, UTF-8) and ``corpus.json`` (the
settings and counts) into ``--out``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import random
from collections.abc import Callable
from pathlib import Path

TASKS = {"zh": ("en", "zh"), "digits": ("en", "zxx")}  # task -> (source tag, target tag)
MAX_NUMBER = 99_999
MIN_HELD_OUT_NUMBER = 100  # smaller numbers are single words or tens-units pairs: vocabulary
FIRST_YEAR, LAST_YEAR = 1950, 2049
DIGIT_WEIGHTS = (1, 2, 4, 4, 4)  # how often numbers of 1, 2, ... 5 digits are drawn

_ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
         "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
         "eighteen", "nineteen")
_TENS = ("_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_ORDINAL_ONES = ("_", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth",
                 "ninth", "tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth",
                 "sixteenth", "seventeenth", "eighteenth", "nineteenth")
_ORDINAL_TENS = {20: "twentieth", 30: "thirtieth"}
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")
_ZH_DIGITS = "零一二三四五六七八九"
_ZH_UNITS = ("", "十", "百", "千")

Value = tuple[str, int] | tuple[str, datetime.date]  # ("number", n) or ("date", d)


# English -----------------------------------------------------------------------------------


def _below_100(n: int) -> str:
    if n < 20:
        return _ONES[n]
    tens, ones = divmod(n, 10)
    return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")


def _below_1000(n: int, british: bool) -> str:
    hundreds, rest = divmod(n, 100)
    if not hundreds:
        return _below_100(rest)
    words = f"{_ONES[hundreds]} hundred"
    if rest:
        words += (" and " if british else " ") + _below_100(rest)
    return words


def english_number(n: int, british: bool = True) -> str:
    """``342`` -> ``three hundred and forty-two`` (``three hundred forty-two`` if not british)."""
    if not 0 <= n <= 999_999:
        raise ValueError(f"number out of range: {n}")
    thousands, rest = divmod(n, 1000)
    if not thousands:
        return _below_1000(rest, british)
    words = f"{_below_1000(thousands, british)} thousand"
    if rest:
        joint = " and " if british and rest < 100 else " "
        words += joint + _below_1000(rest, british)
    return words


def english_ordinal(n: int) -> str:
    """``4`` -> ``fourth``, ``21`` -> ``twenty-first`` (1-31)."""
    if n < 20:
        return _ORDINAL_ONES[n]
    if n in _ORDINAL_TENS:
        return _ORDINAL_TENS[n]
    tens, ones = divmod(n, 10)
    return f"{_TENS[tens]}-{_ORDINAL_ONES[ones]}"


def _suffixed(n: int) -> str:
    """``1`` -> ``1st``, ``22`` -> ``22nd``, ``13`` -> ``13th``."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


DATE_FORMS: tuple[Callable[[datetime.date], str], ...] = (
    lambda d: f"the {english_ordinal(d.day)} of {_MONTHS[d.month - 1]} {d.year}",
    lambda d: f"the {_suffixed(d.day)} of {_MONTHS[d.month - 1]}, {d.year}",
    lambda d: f"{_MONTHS[d.month - 1]} {d.day}, {d.year}",
    lambda d: f"{_MONTHS[d.month - 1]} {_suffixed(d.day)}, {d.year}",
    lambda d: f"{d.day} {_MONTHS[d.month - 1]} {d.year}",
    lambda d: f"{_MONTHS[d.month - 1]} the {english_ordinal(d.day)}, {d.year}",
)


# Targets -----------------------------------------------------------------------------------


def _zh_section(n: int) -> str:
    """1-9999 in Chinese numerals, with 零 for inner zeros (一十 kept; see chinese_number)."""
    digits = [int(c) for c in f"{n:04d}"]  # thousands, hundreds, tens, ones
    out, pending_zero = "", False
    for position, digit in enumerate(digits):
        if digit == 0:
            pending_zero = bool(out)
            continue
        if pending_zero:
            out += "零"
            pending_zero = False
        out += _ZH_DIGITS[digit] + _ZH_UNITS[3 - position]
    return out


def chinese_number(n: int) -> str:
    """``342`` -> ``三百四十二``, ``10010`` -> ``一万零一十``, ``15`` -> ``十五`` (below 10^8)."""
    if not 0 <= n < 100_000_000:
        raise ValueError(f"number out of range: {n}")
    if n == 0:
        return "零"
    high, low = divmod(n, 10_000)
    text = ""
    if high:
        text = _zh_section(high) + "万"
        if low and low < 1000:
            text += "零"
    if low:
        text += _zh_section(low)
    return text[1:] if text.startswith("一十") else text  # 十五, 十二万; 一百一十 keeps its 一


def target(task: str, value: Value) -> str:
    kind, item = value
    if kind == "number":
        assert isinstance(item, int)
        return chinese_number(item) if task == "zh" else str(item)
    assert isinstance(item, datetime.date)
    return f"{item.year}年{item.month}月{item.day}日" if task == "zh" else item.isoformat()


def source(value: Value, rng: random.Random) -> str:
    kind, item = value
    if kind == "number":
        assert isinstance(item, int)
        return english_number(item, british=rng.random() < 0.5)
    assert isinstance(item, datetime.date)
    return rng.choice(DATE_FORMS)(item)


# Sampling and the split --------------------------------------------------------------------


def draw_value(rng: random.Random, kind: str | None = None) -> Value:
    """A number or a date (``kind``, else either with equal chance)."""
    if (kind or rng.choice(("number", "date"))) == "number":
        digits = rng.choices(range(1, 6), DIGIT_WEIGHTS)[0]
        low = 0 if digits == 1 else 10 ** (digits - 1)
        return ("number", rng.randint(low, 10 ** digits - 1))
    first = datetime.date(FIRST_YEAR, 1, 1).toordinal()
    last = datetime.date(LAST_YEAR, 12, 31).toordinal()
    return ("date", datetime.date.fromordinal(rng.randint(first, last)))


def build(task: str, train_size: int, held_out_size: int, seed: int,
          ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(train pairs, held-out pairs); held-out values are unique and never in train."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    rng = random.Random(seed)
    held_values: list[Value] = []
    seen: set[Value] = set()
    while len(held_values) < held_out_size:
        value = draw_value(rng, ("number", "date")[len(held_values) % 2])  # half each
        if value in seen or (value[0] == "number" and value[1] < MIN_HELD_OUT_NUMBER):
            continue
        seen.add(value)
        held_values.append(value)
    held_out = [(source(v, rng), target(task, v)) for v in held_values]
    train: list[tuple[str, str]] = []
    while len(train) < train_size:
        value = draw_value(rng)
        if value not in seen:  # repeats inside train are fine (small numbers recur)
            train.append((source(value, rng), target(task, value)))
    return train, held_out


def write_tsv(path: Path, pairs: list[tuple[str, str]]) -> None:
    path.write_text("".join(f"{s}\t{t}\n" for s, t in pairs), encoding="utf-8")


def read_tsv(path: Path) -> list[tuple[str, str]]:
    pairs = []
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2:
            raise SystemExit(f"{path}:{number}: expected source<TAB>target")
        pairs.append((parts[0].strip(), parts[1].strip()))
    return pairs


def make_corpus(out: Path, task: str = "zh", train_size: int = 40_000,
                held_out_size: int = 1000, seed: int = 0) -> dict[str, object]:
    """Writes train.tsv, held_out.tsv and corpus.json into ``out``; returns the description."""
    train, held_out = build(task, train_size, held_out_size, seed)
    out.mkdir(parents=True, exist_ok=True)
    write_tsv(out / "train.tsv", train)
    write_tsv(out / "held_out.tsv", held_out)
    src, tgt = TASKS[task]
    numbers = sum(1 for s, _ in held_out if not any(m in s for m in _MONTHS))
    info: dict[str, object] = {
        "task": task, "source_language": src, "target_language": tgt, "seed": seed,
        "train_pairs": len(train), "distinct_train_sources": len({s for s, _ in train}),
        "held_out_pairs": len(held_out), "held_out_numbers": numbers,
        "held_out_dates": len(held_out) - numbers,
        "train_file": str(out / "train.tsv"), "held_out_file": str(out / "held_out.tsv"),
    }
    (out / "corpus.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the TSV files")
    parser.add_argument("--task", choices=tuple(TASKS), default="zh")
    parser.add_argument("--train", type=int, default=40_000, help="training pairs")
    parser.add_argument("--held-out", type=int, default=1000, help="held-out pairs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(json.dumps(make_corpus(args.out, args.task, args.train, args.held_out, args.seed),
                     indent=2))


if __name__ == "__main__":
    main()
