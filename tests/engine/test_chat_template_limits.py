"""Hostile chat templates end in a one-line refusal, within the limits of engine.template_limits.

Each template here is an attack that, before the limits, ran for minutes, grew to gigabytes or
escaped as a traceback (issue 17).
"""

from __future__ import annotations

import sys
import threading
from types import FrameType
from typing import Any

import pytest

from engine.chat_template import UnsafeTemplateError, render_chat
from engine.errors import ConfigError
from engine.template_limits import BASE_OUTPUT_CHARS, MAX_TEMPLATE_CHARS

CONVERSATION = [{"role": "user", "content": "Hi"}]

DOUBLING = ("{% set ns = namespace(v=START) %}{% for i in range(40) %}"
            "{% set ns.v = ns.v OP ns.v %}{% endfor %}{{ ns.v|length }}")

HOSTILE = {
    # Time: ten billion loop steps, and a macro that calls itself twice per level.
    "nested loops": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}"
                    "{% endfor %}",
    "exponential macro": "{% macro f(n) %}{% if n > 0 %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}"
                         "{% endmacro %}{{ f(40) }}",
    # Integers: powers and repeated squaring.
    "huge power": "{{ 2 ** (2 ** 40) }}",
    "large power": "{{ 10 ** 100000 }}",
    "repeated squaring": "{% set ns = namespace(n=3) %}{% for i in range(100) %}"
                         "{% set ns.n = ns.n * ns.n %}{% endfor %}{{ ns.n }}",
    # Output: a gigabyte of text, a little at a time.
    "gigabyte output": "{% for i in range(100000) %}{{ 'x' * 10000 }}{% endfor %}",
    # Values: each of these builds one huge string or list in a single call.
    "repeat": "{{ 'x' * 100000000 }}",
    "center filter": "{{ 'x'|center(1000000000) }}",
    "ljust method": "{{ 'x'.ljust(1000000000) }}",
    "percent width": "{{ '%1000000000s' % 'x' }}",
    "percent star width": "{{ '%*s' % (1000000000, 'x') }}",
    "format method width": "{{ '{:>1000000000}'.format('x') }}",
    "format filter width": "{{ '%1000000000s'|format('x') }}",
    "indent filter": "{{ ('\\n' * 100000)|indent(100000) }}",
    "join filter": "{{ range(100000)|join('x' * 100000) }}",
    "replace method": "{{ ('a' * 100000).replace('', 'x' * 100000) }}",
    "replace filter": "{{ ('a' * 100000)|replace('', 'x' * 100000) }}",
    "expandtabs": "{{ ('\\t' * 100000).expandtabs(100000) }}",
    "wordwrap": "{{ ('a' * 100000)|wordwrap(1, wrapstring='x' * 10000) }}",
    "tojson indent": "{{ messages|tojson(indent=100000) }}",
    "batch count": "{{ [1]|batch(1000000, 'x')|list|length }}",
    "tilde doubling": DOUBLING.replace("START", "'x'").replace("OP", "~"),
    "plus doubling": DOUBLING.replace("START", "'x'").replace("OP", "+"),
    "list doubling": DOUBLING.replace("START", "[1]").replace("OP", "+"),
    # Source: a template far larger than any real one.
    "huge source": "x" * (MAX_TEMPLATE_CHARS + 1),
}


@pytest.mark.parametrize("template", list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_templates_are_refused_as_unsafe(template: str) -> None:
    with pytest.raises(UnsafeTemplateError, match="goes past a safety limit") as caught:
        render_chat(template, CONVERSATION, source="evil/nightlamp.json")
    message = str(caught.value)
    assert message.startswith("evil/nightlamp.json: chat template goes past a safety limit (")
    assert "\n" not in message


def test_the_clock_names_the_limit() -> None:
    with pytest.raises(UnsafeTemplateError, match=r"more than 1 s of CPU time"):
        render_chat(HOSTILE["nested loops"], CONVERSATION)


@pytest.mark.parametrize(
    "template",
    ["{{ " + "9" * 5000 + " }}", "{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}"],
    ids=["5000-digit integer", "5000 nested parentheses"],
)
def test_templates_that_break_the_compiler_are_config_errors(template: str) -> None:
    with pytest.raises(ConfigError, match="does not compile"):
        render_chat(template, CONVERSATION)


def test_long_conversations_still_render() -> None:
    # The size limit grows with the conversation: a chat longer than the base limit is fine.
    template = "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}"
    long = "y" * BASE_OUTPUT_CHARS
    messages = [{"role": "user", "content": long}, {"role": "assistant", "content": long}]
    assert render_chat(template, messages) == f"user: {long}\nassistant: {long}\n"


def test_values_just_under_the_limits_render() -> None:
    assert render_chat("{{ 'x'|center(99999)|length }}", CONVERSATION) == "99999"
    assert render_chat("{{ 2 ** 1000 > 0 }}", CONVERSATION) == "True"
    assert render_chat("{{ ('a' ~ 'b') * 3 + 'c' }}{{ '%5s|' % 'x' }}", CONVERSATION) == \
        "abababc    x|"


def test_a_debuggers_tracer_survives_a_render() -> None:
    calls: list[str] = []

    def tracer(frame: FrameType, event: str, arg: Any) -> None:
        calls.append(frame.f_code.co_name)

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        render_chat("{% for m in messages %}{{ m.content|upper }}{% endfor %}", CONVERSATION)
        after = sys.gettrace()
    finally:
        sys.settrace(previous)
    assert after is tracer
    # Frames outside the template (ours, Jinja's) were still reported to the outer tracer.
    assert "limited_output" in calls


def test_limits_hold_on_another_thread_and_leave_this_one_alone() -> None:
    errors: list[BaseException] = []
    before = sys.gettrace()

    def run() -> None:
        try:
            render_chat(HOSTILE["gigabyte output"], CONVERSATION)
        except BaseException as error:
            errors.append(error)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], UnsafeTemplateError)
    assert sys.gettrace() is before
