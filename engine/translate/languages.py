"""Language tags for translation: checking what users type, names for prompts, matching pairs.

Tags are BCP-47 (``en``, ``de``, ``pt-BR``, ``zh-Hant``). Only the shape is checked strictly;
a primary language the engine has no name for is still accepted where a dedicated model lists it
(its manifest is the authority), but an instruct model must be told a name, so there it must be
known. Chinese is the one language whose script subtag changes what a translator must write.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from engine.errors import ConfigError
from engine.language import NAMES, language_name

AUTO = "auto"
_TAG = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*$")
# Common languages that engine.language cannot detect but models can translate.
EXTRA_NAMES = {
    "af": "Afrikaans", "bg": "Bulgarian", "bn": "Bengali", "ca": "Catalan", "cs": "Czech",
    "cy": "Welsh", "da": "Danish", "et": "Estonian", "eu": "Basque", "fa": "Persian",
    "fi": "Finnish", "ga": "Irish", "gl": "Galician", "hr": "Croatian", "hu": "Hungarian",
    "hy": "Armenian", "is": "Icelandic", "ka": "Georgian", "kk": "Kazakh", "lt": "Lithuanian",
    "lv": "Latvian", "mk": "Macedonian", "ms": "Malay", "mt": "Maltese", "nb": "Norwegian Bokmål",
    "nn": "Norwegian Nynorsk", "no": "Norwegian", "ro": "Romanian", "sk": "Slovak",
    "sl": "Slovenian", "sq": "Albanian", "sr": "Serbian", "sw": "Swahili", "ta": "Tamil",
    "te": "Telugu", "tl": "Tagalog", "ur": "Urdu", "uz": "Uzbek", "zu": "Zulu", "la": "Latin",
    "eo": "Esperanto", "be": "Belarusian", "az": "Azerbaijani", "mn": "Mongolian",
}
_TRADITIONAL = {"hant", "tw", "hk", "mo"}


def base(tag: str) -> str:
    """The primary language subtag, lower-cased: ``pt-BR`` -> ``pt``."""
    return tag.split("-")[0].lower()


def variant(tag: str) -> str:
    """What a translator must produce: the primary language, or ``zh-Hant`` for Traditional
    Chinese (``zh-TW``, ``zh-HK``, ``zh-Hant``) as opposed to ``zh`` (Simplified)."""
    primary = base(tag)
    if primary == "zh" and _TRADITIONAL & {s.lower() for s in tag.split("-")[1:]}:
        return "zh-Hant"
    return primary


def same_language(a: str, b: str) -> bool:
    return variant(a) == variant(b)


def is_known(tag: str) -> bool:
    return base(tag) in NAMES or base(tag) in EXTRA_NAMES


def name(tag: str) -> str:
    """An English name to put in prompts: ``de`` -> German, ``zh-TW`` -> Traditional Chinese."""
    if variant(tag) == "zh-Hant":
        return "Traditional Chinese"
    return EXTRA_NAMES.get(base(tag)) or language_name(tag)


# Which option sets each side of a pair on the command line (for the errors' hints).
_OPTION = {"source": "--from", "target": "--to"}
_EXAMPLES = "a BCP-47 tag such as en, de, pt-BR or zh-Hant"


def check_tag(tag: str, side: str = "target", *, allow_auto: bool = False) -> str:
    """The tag in canonical case (``pt-br`` -> ``pt-BR``), or a ConfigError naming the
    ``side`` ("source" or "target") it was given for."""
    tag = tag.strip()
    if allow_auto and tag.lower() == AUTO:
        return AUTO
    if not _TAG.match(tag):
        auto = " or 'auto'" if allow_auto else ""
        raise ConfigError(f"{side} language {tag!r} is not a language tag",
                          hint=f"give {_OPTION[side]} {_EXAMPLES}{auto}",
                          app_hint=f"choose the {side} language from the list")
    primary, *rest = tag.split("-")
    canonical = [primary.lower()]
    for sub in rest:  # script subtags are title case, regions upper case (BCP-47 conventions)
        canonical.append(sub.title() if len(sub) == 4 else sub.upper() if len(sub) == 2
                         else sub.lower())
    return "-".join(canonical)


def check_known(tag: str, side: str = "target") -> None:
    """Refuses a tag whose language has no name to tell an instruct model."""
    if not is_known(tag):
        raise ConfigError(f"{side} language {tag!r} is not one Nightlamp knows",
                          hint=f"give {_OPTION[side]} a tag such as en, de, fr, es, zh or ja",
                          app_hint=f"choose the {side} language from the list")


def matches(tag: str, supported: Iterable[str]) -> bool:
    """Whether ``tag`` is one of ``supported``: the same language (and Chinese script); a
    region (``pt-BR``) matters only when both sides name one."""
    for item in supported:
        if not same_language(tag, item):
            continue
        mine, theirs = tag.lower().split("-")[1:], item.lower().split("-")[1:]
        regions = [s for s in mine if len(s) == 2], [s for s in theirs if len(s) == 2]
        if not (regions[0] and regions[1]) or regions[0] == regions[1]:
            return True
    return False
