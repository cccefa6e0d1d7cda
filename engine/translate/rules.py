"""Protection rules per format: what in running text is never translated.

URLs and e-mail addresses everywhere; inline code in plain text and Markdown; in Markdown also
images, inline HTML and autolinks (atoms) and links (a span around the link text, so the text is
translated and the destination kept). Every pattern is bounded, so a huge line stays linear.
"""

from __future__ import annotations

import re

from engine.translate.protect import Parts, Rule, Token, atom, new_pair

_URL = re.compile(r"(?:https?|ftp|file)://[^\s<>\"'`⟦⟧]+|www\.[^\s<>\"'`⟦⟧]+"
                  r"|mailto:[^\s<>\"'`⟦⟧]+")
_EMAIL = re.compile(r"[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63})+")
_URL_TAIL = ".,;:!?'\"”’»)]}"


def _url(match: re.Match[str]) -> Parts:
    """A URL without the punctuation of the sentence around it (a closing bracket stays when
    the URL opened one, as Wikipedia links do)."""
    url = match.group(0)
    end = len(url)
    while end > 1 and url[end - 1] in _URL_TAIL:
        if url[end - 1] == ")" and url[:end].count("(") >= url[:end].count(")"):
            break
        end -= 1
    return [Token(url[:end]), url[end:]]


# Chat-template control strings written in a document must not reach a prompt as themselves
# (the tokenizer would turn them into the real special tokens and end the user's turn early).
_SPECIAL = re.compile(r"<\|[^|<>\s]{1,40}\|>|</?s>|\[/?INST\]|<(?:start|end)_of_turn>")


def special_token_rule() -> Rule:
    """Special-token look-alikes (``<|im_end|>``, ``</s>``, ``[INST]``) kept out of prompts."""
    return _SPECIAL, atom


def web_rules() -> list[Rule]:
    """URLs and e-mail addresses: never translated."""
    return [(_URL, _url), (_EMAIL, atom)]


def _link(match: re.Match[str]) -> Parts:
    opening, closing = new_pair("[", match.group(0)[len(match.group(1)):])
    return [opening, match.group(1)[1:], closing]


TEXT_RULES: list[Rule] = [(re.compile(r"`[^`\n]{1,1000}`"), atom), *web_rules()]
MARKDOWN_RULES: list[Rule] = [
    (re.compile(r"`[^`\n]{1,1000}`"), atom),
    (re.compile(r"!\[[^\]\n]{0,500}\]\([^)\s]{1,2000}(?:[ \t]+\"[^\"\n]{0,200}\")?\)"), atom),
    (re.compile(r"(\[[^\]\n]{1,500})\]\([^)\s]{1,2000}(?:[ \t]+\"[^\"\n]{0,200}\")?\)"), _link),
    (re.compile(r"(\[[^\]\n]{1,500})\]\[[^\]\n]{0,200}\]"), _link),
    (re.compile(r"<(?:https?://|mailto:)[^>\s]{1,2000}>|</?[A-Za-z][A-Za-z0-9-]{0,30}"
                r"(?:\s[^<>\n]{0,500})?/?>"), atom),
    *web_rules(),
]
