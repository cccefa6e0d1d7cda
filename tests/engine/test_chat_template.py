"""Tests for engine.chat_template: exact renders, the sandbox, and one-line ConfigErrors."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from engine.chat_template import CHATML_TEMPLATE, _compile, render_chat, validate_messages
from engine.errors import ConfigError

CONVERSATION = [
    {"role": "system", "content": "You are Nightlamp."},
    {"role": "user", "content": "Hi"},
]

# Meta's Llama 3 Instruct template, as shipped in tokenizer_config.json.
LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
    "{% endif %}"
)

# Mistral-style: alternation is enforced with raise_exception.
ALTERNATING_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% else %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}"
)


def test_chatml_renders_exactly() -> None:
    assert render_chat(CHATML_TEMPLATE, CONVERSATION) == (
        "<|im_start|>system\nYou are Nightlamp.<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_chatml_without_generation_prompt() -> None:
    messages = [*CONVERSATION, {"role": "assistant", "content": "Hello!"}]
    assert render_chat(CHATML_TEMPLATE, messages, add_generation_prompt=False) == (
        "<|im_start|>system\nYou are Nightlamp.<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\nHello!<|im_end|>\n"
    )


def test_llama3_template_with_bos_token() -> None:
    rendered = render_chat(
        LLAMA3_TEMPLATE, [{"role": "user", "content": " Hi \n"}], bos_token="<|begin_of_text|>"
    )
    assert rendered == (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def test_alternating_template_renders_a_good_conversation() -> None:
    messages = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"},
    ]
    rendered = render_chat(ALTERNATING_TEMPLATE, messages, bos_token="<s>", eos_token="</s>")
    assert rendered == "<s>[INST] a [/INST]b</s>[INST] c [/INST]"


def test_raise_exception_becomes_config_error_with_its_message() -> None:
    with pytest.raises(ConfigError) as caught:
        render_chat(ALTERNATING_TEMPLATE, CONVERSATION, source="models/tiny/nightlamp.json")
    message = str(caught.value)
    assert message.startswith("models/tiny/nightlamp.json: ")
    assert "Conversation roles must alternate user/assistant/user/assistant/..." in message


@pytest.mark.parametrize(
    "payload",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ ''.__class__ }}",  # stock Jinja would render '' here and say nothing
        "{{ joiner.__init__.__globals__.os }}",
        "{{ namespace.__init__.__globals__ }}",
        "{{ lipsum.__globals__['os'].popen('id').read() }}",
        "{% for m in messages %}{{ m.__class__.__base__.__subclasses__() }}{% endfor %}",
        "{{ raise_exception.__globals__ }}",
    ],
)
def test_template_injection_is_refused(payload: str) -> None:
    with pytest.raises(ConfigError, match="Python internals") as caught:
        render_chat(payload, CONVERSATION, source="evil/tokenizer_config.json")
    assert str(caught.value).startswith("evil/tokenizer_config.json: ")
    assert "use another model or template" in str(caught.value)


def test_templates_cannot_modify_their_inputs() -> None:
    messages = [{"role": "user", "content": "Hi"}]
    with pytest.raises(ConfigError, match="modify"):
        render_chat("{{ messages.append({'role': 'system'}) }}", messages)
    assert messages == [{"role": "user", "content": "Hi"}]


def test_oversized_strings_are_refused() -> None:
    with pytest.raises(ConfigError, match="safety limit"):
        render_chat("{{ 'x' * 100000000 }}", CONVERSATION)


def test_syntax_error_names_source_and_line() -> None:
    template = "{% for message in messages %}\n{{ message['content'] }}\n{{ message[ }}\n"
    with pytest.raises(ConfigError) as caught:
        render_chat(template, CONVERSATION, source="models/broken")
    message = str(caught.value)
    assert message.startswith("models/broken: syntax error on line 3")
    assert "\n" not in message


def test_unclosed_block_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="syntax error"):
        render_chat("{% for message in messages %}{{ message.content }}", CONVERSATION)


@pytest.mark.parametrize(
    "template", ["{{ nothing.here }}", "{{ messages[5].content.strip() }}", "{{ undefined_fn() }}"]
)
def test_undefined_things_are_config_errors(template: str) -> None:
    with pytest.raises(ConfigError, match="undefined"):
        render_chat(template, CONVERSATION)


def test_python_errors_in_templates_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="ZeroDivisionError"):
        render_chat("{{ 1 / 0 }}", CONVERSATION)


def test_undefined_variables_in_conditions_are_falsy() -> None:
    # Real templates test optional variables with `{% if tools %}`; that must keep working.
    assert render_chat("{% if tools %}T{% endif %}ok", CONVERSATION) == "ok"


def test_tojson_does_not_escape_html_or_unicode() -> None:
    tools = [{"name": "calc", "description": "a < b && c > d, 夜灯"}]
    rendered = render_chat("{{ tools | tojson }}", CONVERSATION, tools=tools)
    assert rendered == '[{"name": "calc", "description": "a < b && c > d, 夜灯"}]'


def test_tojson_indent() -> None:
    assert render_chat("{{ {'a': 1} | tojson(indent=2) }}", CONVERSATION) == '{\n  "a": 1\n}'


def test_strftime_now() -> None:
    year = render_chat("{{ strftime_now('%Y') }}", CONVERSATION)
    assert year in {str(datetime.now().year), str(datetime.now().year - 1)}


def test_loop_controls_and_whitespace_control() -> None:
    template = (
        "{% for message in messages %}\n"
        "    {% if loop.index0 == 1 %}{% break %}{% endif %}\n"
        "{{ message['role'] }}\n"
        "{% endfor %}\n"
    )
    # trim_blocks and lstrip_blocks: block tags on their own lines leave no blank lines.
    assert render_chat(template, CONVERSATION) == "system\n"


def test_extra_variables_reach_the_template() -> None:
    assert render_chat("{{ date_string }}", CONVERSATION, date_string="26 Jul 2024") == (
        "26 Jul 2024"
    )


def test_compiled_templates_are_cached() -> None:
    template = CHATML_TEMPLATE + "{# cache test #}"
    render_chat(template, CONVERSATION)
    hits = _compile.cache_info().hits
    render_chat(template, CONVERSATION)
    assert _compile.cache_info().hits == hits + 1


@pytest.mark.parametrize(
    ("messages", "match"),
    [
        ([{"role": "bogus", "content": "x"}], "message 1 has role 'bogus'"),
        ([{"role": "user", "content": "a"}, {"role": "user"}], "message 2 has no 'content'"),
        ([{"content": "x"}], "message 1 has role None"),
        ([{"role": "user", "content": 5}], "content of type int"),
        ([], "messages is empty"),
        (["hello"], "message 1 is a str"),
        ("hello", "messages must be a list"),
    ],
)
def test_validate_messages_rejects(messages: Any, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        validate_messages(messages)
    with pytest.raises(ConfigError, match=match):
        render_chat(CHATML_TEMPLATE, messages)


def test_validate_messages_accepts_extra_keys() -> None:
    validate_messages([{"role": "user", "content": "hi", "name": "ana"}])
