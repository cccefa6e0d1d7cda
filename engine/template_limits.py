"""Resource limits for chat templates: time, output size, value sizes and integer sizes.

Jinja's sandbox stops templates from reaching Python internals, but not from spending minutes or
gigabytes: ``2 ** 2 ** 40``, ten billion loop steps or ``'x'|center(10**10)`` all pass it. A chat
template comes from a downloaded model, so every render runs under a :class:`RenderBudget`:

- CPU time: a tracer counts the lines the compiled template runs and stops it past the limit
  (thread CPU time, so a busy desktop does not fail an honest template);
- size: every string or list the template builds through an operator, filter, method call or
  ``~`` concatenation, and its output, stay under ``max_chars`` (1 M characters plus a margin
  for the conversation itself, so long chats still render);
- integers: ``*`` and ``**`` may not build integers wider than ``MAX_INT_BITS`` bits, and the
  numbers passed to filters and methods (widths, counts) are at most ``MAX_INT_ARGUMENT``.

Sizes are estimated before the work where the work could be huge (padding, joins, replaces,
indents, repeats, powers), and measured after it everywhere else.
"""

from __future__ import annotations

import functools
import math
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

__all__ = [
    "BASE_OUTPUT_CHARS",
    "MAX_INT_ARGUMENT",
    "MAX_INT_BITS",
    "MAX_TEMPLATE_CHARS",
    "RENDER_SECONDS",
    "RenderBudget",
    "TemplateLimitError",
    "checked_binop",
    "checked_call",
    "checked_concat",
    "limited_filter",
]

MAX_TEMPLATE_CHARS = 512_000  # real templates are 1-30 kB; compiling is linear but not free
BASE_OUTPUT_CHARS = 1_000_000  # plus RenderBudget's margin for the conversation's own text
RENDER_SECONDS = 1.0  # real templates render in milliseconds
MAX_INT_BITS = 1024  # far beyond any counter or index a template needs
MAX_INT_ARGUMENT = 100_000  # widths, counts, indents; the same bound as the sandbox's range()
MAX_JSON_INDENT = 64

# Jinja names compiled templates' code "<template>" (from_string); only those frames are traced.
_TEMPLATE_FILENAME = "<template>"
_LINES_PER_CLOCK_CHECK = 256
# A width or precision in a %-format or str.format spec: "%1000000s", "{:>1000000}".
_FORMAT_NUMBER = re.compile(r"\d{7,}")


class TemplateLimitError(Exception):
    """A template went past one of the limits; the message says which, in a few words."""


class RenderBudget:
    """The limits of one render, active on the rendering thread inside :meth:`enforced`."""

    def __init__(self, max_chars: int = BASE_OUTPUT_CHARS, seconds: float = RENDER_SECONDS):
        self.max_chars = max_chars
        self.seconds = seconds
        self._deadline = float("inf")
        self._lines = 0

    @classmethod
    def for_input(cls, input_chars: int) -> RenderBudget:
        """A budget whose size limit grows with the text the template is given to render."""
        return cls(max_chars=BASE_OUTPUT_CHARS + 4 * input_chars)

    def check_clock(self) -> None:
        if time.thread_time() > self._deadline:
            raise TemplateLimitError(f"rendering took more than {self.seconds:g} s of CPU time")

    def check_chars(self, chars: int, what: str = "string", unit: str = "characters") -> None:
        if chars > self.max_chars:
            raise TemplateLimitError(
                f"a {what} of {chars:,} {unit}, over the limit of {self.max_chars:,}"
            )

    def check_value(self, value: Any) -> Any:
        """Returns ``value`` when it is small enough; strings, lists and dicts are measured."""
        if isinstance(value, str):
            self.check_chars(len(value))
        elif isinstance(value, (list, tuple, dict, set, frozenset, bytes)):
            self.check_chars(len(value), type(value).__name__, "items")
        return value

    def limited_output(self, chunks: Iterator[str]) -> Iterator[str]:
        """Passes a render's output on while it stays under the size limit."""
        total = 0
        for chunk in chunks:
            total += len(chunk)
            self.check_chars(total, "rendered prompt")
            yield chunk

    @contextmanager
    def enforced(self) -> Iterator[RenderBudget]:
        """Makes this the thread's budget and traces the template's lines against the clock."""
        previous_budget = getattr(_active, "budget", None)
        previous_trace = sys.gettrace()
        self._deadline = time.thread_time() + self.seconds
        self._lines = 0

        def local_trace(frame: FrameType, event: str, arg: Any) -> Any:
            self._lines += 1
            if self._lines % _LINES_PER_CLOCK_CHECK == 0:
                self.check_clock()
            return local_trace

        def global_trace(frame: FrameType, event: str, arg: Any) -> Any:
            if frame.f_code.co_filename == _TEMPLATE_FILENAME:
                return local_trace
            # Keep a debugger's or coverage's tracer working for everything else.
            return previous_trace(frame, event, arg) if previous_trace else None  # type: ignore[arg-type]

        _active.budget = self
        sys.settrace(global_trace)
        try:
            yield self
        finally:
            sys.settrace(previous_trace)
            _active.budget = previous_budget


_active = threading.local()


def _budget() -> RenderBudget:
    # Outside a render (Jinja folds constant filter calls while compiling) the base limits hold.
    return getattr(_active, "budget", None) or _COMPILE_BUDGET


_COMPILE_BUDGET = RenderBudget()


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_int_arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    for value in (*args, *kwargs.values()):
        if _is_int(value) and abs(value) > MAX_INT_ARGUMENT:
            raise TemplateLimitError(
                f"an argument of {value}, over the limit of {MAX_INT_ARGUMENT:,}"
            )


def _check_format_spec(template: Any) -> None:
    if isinstance(template, str) and _FORMAT_NUMBER.search(template):
        raise TemplateLimitError("a format width or precision of a million or more")


def _joined_chars(separator: str, items: Any) -> int:
    items = list(items)
    return sum(len(str(item)) for item in items) + len(separator) * max(len(items) - 1, 0)


def _replaced_chars(text: str, old: str, new: str, count: int = -1) -> int:
    matches = len(text) + 1 if old == "" else text.count(old)
    if count is not None and count >= 0:
        matches = min(matches, count)
    return len(text) + matches * (len(new) - len(old))


def _str_method_chars(name: str, text: str, args: tuple[Any, ...],
                      kwargs: dict[str, Any]) -> int | None:
    """The size a str method's result will have, for the methods that can grow a string."""
    if name in ("center", "ljust", "rjust", "zfill") and args and _is_int(args[0]):
        return max(len(text), args[0])
    if name == "expandtabs":
        size = args[0] if args else kwargs.get("tabsize", 8)
        return len(text) + text.count("\t") * max(size, 0) if _is_int(size) else None
    if name == "join" and args:
        return _joined_chars(text, args[0])
    if name == "replace" and len(args) >= 2 and all(isinstance(a, str) for a in args[:2]):
        count = args[2] if len(args) > 2 and _is_int(args[2]) else -1
        return _replaced_chars(text, args[0], args[1], count)
    return None


def checked_call(call: Callable[..., Any], obj: Any, args: tuple[Any, ...],
                 kwargs: dict[str, Any]) -> Any:
    """Runs ``call(obj, *args, **kwargs)`` for a template, within the thread's budget."""
    budget = _budget()
    budget.check_clock()
    _check_int_arguments(args, kwargs)
    method = getattr(obj, "__wrapped__", obj)  # the sandbox wraps str.format
    owner = getattr(method, "__self__", None)
    if isinstance(owner, str):
        if method.__name__ in ("format", "format_map"):
            _check_format_spec(owner)
        estimate = _str_method_chars(method.__name__, owner, args, kwargs)
        if estimate is not None:
            budget.check_chars(estimate)
    return budget.check_value(call(obj, *args, **kwargs))


def checked_binop(operator: Callable[[Any, Any], Any], op: str, left: Any, right: Any) -> Any:
    """Applies a template's ``*``, ``**``, ``+`` or ``%`` within the thread's budget."""
    budget = _budget()
    if op == "*":
        for sequence, count in ((left, right), (right, left)):
            if isinstance(sequence, (str, list, tuple)) and _is_int(count):
                _check_length(budget, sequence, len(sequence) * max(count, 0))
        if _is_int(left) and _is_int(right):
            _check_int_bits(left.bit_length() + right.bit_length())
    elif op == "**" and _is_int(left) and _is_int(right) and right > 0 and abs(left) > 1:
        _check_int_bits(math.ceil(right * math.log2(abs(left))))
    elif op == "+" and isinstance(left, (str, list, tuple)) and type(left) is type(right):
        _check_length(budget, left, len(left) + len(right))
    elif op == "%" and isinstance(left, str):
        _check_format_spec(left)
        _check_int_arguments(right if isinstance(right, tuple) else (right,), {})
    return budget.check_value(operator(left, right))


def _check_length(budget: RenderBudget, like: str | list[Any] | tuple[Any, ...],
                  length: int) -> None:
    if isinstance(like, str):
        budget.check_chars(length)
    else:
        budget.check_chars(length, type(like).__name__, "items")


def _check_int_bits(bits: int) -> None:
    if bits > MAX_INT_BITS:
        raise TemplateLimitError(f"an integer of about {bits:,} bits, over {MAX_INT_BITS:,}")


def checked_concat(parts: tuple[Any, ...]) -> str:
    """A template's ``a ~ b ~ c``, measured before it is joined."""
    texts = [str(part) for part in parts]
    _budget().check_chars(sum(map(len, texts)))
    return "".join(texts)


# Filters whose arguments can make the result far larger than the input: their result size,
# worked out from the arguments before the filter runs.
def _indent_chars(text: Any, width: Any = 4, first: bool = False, blank: bool = False,
                  *_: Any, **__: Any) -> int | None:
    if not isinstance(text, str):
        return None
    pad = width if _is_int(width) else len(str(width))
    return len(text) + (text.count("\n") + 1) * max(pad, 0)


def _wordwrap_chars(text: Any, width: Any = 79, break_long_words: bool = True,
                    wrapstring: Any = None, *_: Any, **__: Any) -> int | None:
    if not isinstance(text, str) or not _is_int(width):
        return None
    wrap = len(wrapstring) if isinstance(wrapstring, str) else 1
    return len(text) + (len(text) // max(width, 1) + 1) * wrap


def _center_chars(text: Any, width: Any = 80, *_: Any, **__: Any) -> int | None:
    return max(len(str(text)), width) if _is_int(width) else None


def _join_chars(items: Any, d: Any = "", attribute: Any = None, *_: Any,
                **__: Any) -> int | None:
    if attribute is not None or not isinstance(d, str) or isinstance(items, str):
        return None
    return _joined_chars(d, items)


def _replace_chars(text: Any, old: Any = "", new: Any = "", count: Any = None, *_: Any,
                   **__: Any) -> int | None:
    if not all(isinstance(value, str) for value in (text, old, new)):
        return None
    return _replaced_chars(text, old, new, count if _is_int(count) else -1)


def _format_chars(text: Any, *args: Any, **kwargs: Any) -> int | None:
    _check_format_spec(text)
    return None


_FILTER_ESTIMATES: dict[str, Callable[..., int | None]] = {
    "center": _center_chars,
    "format": _format_chars,
    "indent": _indent_chars,
    "join": _join_chars,
    "replace": _replace_chars,
    "wordwrap": _wordwrap_chars,
}


def limited_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """Wraps a Jinja filter so that it runs within the thread's budget.

    Jinja passes a context, eval context or environment first to filters marked for it; the
    wrapper keeps that mark (``functools.wraps`` copies the function's attributes), so the
    value is the first argument after it.
    """
    passes_first = hasattr(function, "jinja_pass_arg")
    estimate = _FILTER_ESTIMATES.get(name)

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        budget = _budget()
        budget.check_clock()
        own = args[1:] if passes_first else args
        _check_int_arguments(own[1:], kwargs)
        if estimate is not None and own:
            chars = estimate(*own, **kwargs)
            if chars is not None:
                budget.check_chars(chars)
        return budget.check_value(function(*args, **kwargs))

    return wrapper
