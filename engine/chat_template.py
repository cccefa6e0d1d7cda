"""Render chat templates: the only place in Nightlamp where a template from a model is run.

Chat templates are Jinja2 code that ships inside model folders, so they are untrusted. They run
in Jinja2's ``ImmutableSandboxedEnvironment`` (llama-cpp-python's CVE-2024-34359 was an
unsandboxed render), configured like Hugging Face transformers so real templates render the
same, and every failure becomes a one-line ConfigError.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, NoReturn

import jinja2
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.nodes import Concat
from jinja2.sandbox import ImmutableSandboxedEnvironment

from engine.errors import ConfigError
from engine.template_limits import (
    MAX_JSON_INDENT,
    MAX_TEMPLATE_CHARS,
    RenderBudget,
    TemplateLimitError,
    checked_binop,
    checked_call,
    checked_concat,
    limited_filter,
)

__all__ = ["CHATML_TEMPLATE", "ROLES", "UnsafeTemplateError", "render_chat", "validate_messages"]

# ChatML, the format our own trained models use.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

ROLES = ("system", "user", "assistant")


class UnsafeTemplateError(ConfigError):
    """A template that reaches for Python internals, modifies its inputs or goes past a resource
    limit: unsafe whatever the conversation, so importers refuse the model outright."""


class _TemplateRaisedError(Exception):
    """Raised by a template's own ``raise_exception(...)`` call."""


class _MutationError(SecurityError):
    """Raised when a template calls a method that would modify its inputs (e.g. list.append)."""


def _raise_exception(message: str) -> NoReturn:
    raise _TemplateRaisedError(message)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


def _tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    if indent is not None and (not isinstance(indent, int) or indent > MAX_JSON_INDENT):
        raise TemplateLimitError(f"tojson indent {indent!r}, over the limit of {MAX_JSON_INDENT}")
    # Jinja's built-in tojson HTML-escapes <, > and &, which corrupts tool schemas and code in
    # prompts; templates expect plain json.dumps, as in transformers.
    return json.dumps(
        value,
        ensure_ascii=ensure_ascii,
        indent=indent,
        separators=separators,
        sort_keys=sort_keys,
    )


class _LimitedCodeGenerator(CodeGenerator):
    """Jinja's code generator, but ``a ~ b`` is measured before it is joined (template_limits)."""

    def visit_Concat(self, node: Concat, frame: Frame) -> None:  # noqa: N802 (Jinja's name)
        self.write("environment.checked_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox with resource limits, where unsafe attribute access fails at once.

    Stock Jinja returns an Undefined for ``''.__class__`` that renders as '' and only raises when
    used further; we raise SecurityError right away so probing templates are reported. Calls,
    filters, the operators that can grow values and ``~`` run within the render's budget
    (engine/template_limits.py).
    """

    code_generator_class = _LimitedCodeGenerator
    # Intercepted operators are also never folded into constants while compiling, so a
    # `2 ** 2 ** 40` in the source cannot stall the compiler either.
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def unsafe_undefined(self, obj: Any, attribute: str) -> jinja2.Undefined:
        # The immutable sandbox also refuses public mutators such as list.append; those are a
        # different mistake from probing dunders, so they get their own message.
        if not attribute.startswith("_"):
            raise _MutationError(f"{type(obj).__name__}.{attribute}")
        raise SecurityError(
            f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe"
        )

    def call_binop(self, context: jinja2.runtime.Context, op: str, left: Any, right: Any) -> Any:
        return checked_binop(self.binop_table[op], op, left, right)

    def call(__self, __context: jinja2.runtime.Context, __obj: Any,  # noqa: N805
             *args: Any, **kwargs: Any) -> Any:
        # The odd names follow Jinja's: a template may pass keyword arguments named self/obj.
        def sandboxed(obj: Any, *inner_args: Any, **inner_kwargs: Any) -> Any:
            return ImmutableSandboxedEnvironment.call(__self, __context, obj, *inner_args,
                                                      **inner_kwargs)

        return checked_call(sandboxed, __obj, args, kwargs)

    @staticmethod
    def checked_concat(parts: tuple[Any, ...]) -> str:
        return checked_concat(parts)


@functools.cache
def _environment() -> _Sandbox:
    """The one sandbox, configured like transformers' (built on first use, not on import)."""
    env = _Sandbox(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    env.filters = {name: limited_filter(name, f) for name, f in env.filters.items()}
    return env


@functools.lru_cache(maxsize=32)
def _compile(template: str) -> jinja2.Template:
    """Compile once per template string; a chat re-renders the same template every turn."""
    return _environment().from_string(template)


def _one_line(text: object, *, drop_period: bool = True) -> str:
    # Our messages are one line with their own punctuation; Jinja's may span lines and end in ".".
    line = " ".join(str(text).split())
    return line.removesuffix(".") if drop_period else line


def validate_messages(messages: Sequence[Mapping[str, str]]) -> None:
    """Check that ``messages`` is a non-empty list of ``{"role", "content"}`` mappings.

    Args:
        messages: The conversation, oldest first.

    Raises:
        ConfigError: The list is empty, or a message is not a mapping, has a role other than
            system/user/assistant, or lacks text content. The message gives its 1-based number.
    """
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
        raise ConfigError(
            f"messages must be a list of {{'role', 'content'}} mappings (got "
            f"{type(messages).__name__})"
        )
    if not messages:
        raise ConfigError("messages is empty; add at least one user message")
    for number, message in enumerate(messages, start=1):
        if not isinstance(message, Mapping):
            raise ConfigError(
                f"message {number} is a {type(message).__name__}, not a mapping; "
                "give every message a 'role' and a 'content'"
            )
        role = message.get("role")
        if role not in ROLES:
            raise ConfigError(
                f"message {number} has role {role!r}; use one of {', '.join(map(repr, ROLES))}"
            )
        content = message.get("content")
        if not isinstance(content, str):
            what = (
                "no 'content'" if content is None else f"content of type {type(content).__name__}"
            )
            raise ConfigError(f"message {number} has {what}; give every message text content")


def render_chat(
    template: str,
    messages: Sequence[Mapping[str, str]],
    *,
    add_generation_prompt: bool = True,
    bos_token: str = "",
    eos_token: str = "",
    source: str = "chat template",
    **extra: Any,
) -> str:
    """Render a conversation into the prompt text a model expects.

    Args:
        template: Jinja2 chat template source (e.g. from the manifest or tokenizer_config.json).
        messages: The conversation, oldest first; each has ``role`` and ``content``.
        add_generation_prompt: End with the header that starts the assistant's reply.
        bos_token: Passed to the template as ``bos_token``.
        eos_token: Passed to the template as ``eos_token``.
        source: Where the template came from (e.g. a manifest path), used in error messages.
        **extra: More template variables (e.g. ``date_string``), as transformers passes them.

    Returns:
        The rendered prompt.

    Raises:
        ConfigError: The messages are invalid, or the template has a syntax error, reaches for
            Python internals, calls ``raise_exception``, uses something undefined or otherwise
            fails to render.
    """
    validate_messages(messages)
    compiled = _compiled(template, source)
    context = {
        **extra,
        "messages": [dict(message) for message in messages],
        "add_generation_prompt": add_generation_prompt,
        "bos_token": bos_token,
        "eos_token": eos_token,
    }
    input_chars = sum(len(message["content"]) for message in messages)
    budget = RenderBudget.for_input(input_chars + len(bos_token) + len(eos_token))
    try:
        with budget.enforced():
            return "".join(budget.limited_output(compiled.generate(context)))
    except _MutationError as error:
        raise UnsafeTemplateError(
            f"{source}: chat template tries to modify its inputs ({error}); templates are "
            "read-only here, fix the template or use another model"
        ) from error
    except SecurityError as error:
        raise UnsafeTemplateError(
            f"{source}: chat template tries to reach Python internals ({_one_line(error)}); "
            "the template is unsafe, use another model or template"
        ) from error
    except _TemplateRaisedError as error:
        reason = _one_line(error, drop_period=False)  # the template author's own words
        raise ConfigError(
            f"{source}: the chat template rejected the conversation: {reason}; "
            "change the messages (e.g. roles or their order) or use another template"
        ) from error
    except TemplateLimitError as error:
        raise _limit_error(source, error) from error
    except jinja2.UndefinedError as error:
        raise ConfigError(
            f"{source}: chat template uses something undefined ({_one_line(error.message)}); "
            "pass the variable it needs or use another template"
        ) from error
    # Templates are code from a model folder: any Python error they trigger is the template's
    # fault, so it is reported as bad configuration, not as an engine crash.
    except (jinja2.TemplateError, TypeError, ValueError, LookupError, ArithmeticError) as error:
        raise ConfigError(
            f"{source}: chat template failed to render ({type(error).__name__}: "
            f"{_one_line(error)}); fix the template or use another model"
        ) from error
    except RecursionError as error:
        raise ConfigError(
            f"{source}: chat template recurses too deeply; fix the template or use another model"
        ) from error
    except MemoryError as error:
        raise _limit_error(source, "it ran out of memory") from error


def _limit_error(source: str, reason: object) -> UnsafeTemplateError:
    return UnsafeTemplateError(
        f"{source}: chat template goes past a safety limit ({reason}); the template is unsafe, "
        "use another model or template"
    )


def _compiled(template: str, source: str) -> jinja2.Template:
    """The compiled template, or a one-line ConfigError saying why it does not compile."""
    if len(template) > MAX_TEMPLATE_CHARS:
        raise _limit_error(source, f"{len(template):,} characters of template source, over "
                                   f"the limit of {MAX_TEMPLATE_CHARS:,}")
    try:
        return _compile(template)
    except jinja2.TemplateSyntaxError as error:
        raise ConfigError(
            f"{source}: syntax error on line {error.lineno}: {_one_line(error.message)}; "
            "fix the template or use another model"
        ) from error
    # A 5,000-digit number literal is a ValueError from Python's int(), deep nesting a
    # RecursionError from the parser: the template's fault, not the engine's.
    except (jinja2.TemplateError, ValueError, OverflowError, RecursionError,
            MemoryError) as error:
        raise ConfigError(
            f"{source}: chat template does not compile ({type(error).__name__}: "
            f"{_one_line(error)}); fix the template or use another model"
        ) from error
