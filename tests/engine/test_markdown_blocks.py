"""The shared Markdown block grammar: each recogniser, and the cases where the document reader
and the translation layout used to disagree, now read the same way by both (and translation
still gives back every byte of markup)."""

from __future__ import annotations

import time

import pytest

from engine.documents.limits import ReadGuard
from engine.documents.markdown import read_markdown
from engine.documents.model import Block
from engine.text.markdown_blocks import (
    MAX_TABLE_LINE,
    AtxHeading,
    FencedCode,
    atx_heading,
    closes_fence,
    fence_body,
    fence_open,
    fenced_code,
    front_matter_end,
    is_table_row,
    is_table_start,
    is_thematic_break,
    list_marker_end,
    quote_depth,
    quote_prefix,
    row_cells,
    setext_level,
    split_cells,
    table_end,
    unquote,
    without_quote,
)
from engine.translate.text import TextLayout


def blocks(text: str) -> list[Block]:
    return read_markdown(text, ReadGuard("test.md", 60))


def units(text: str) -> list[str]:
    """The texts translation would send to the translator, in order."""
    return [unit[0] for unit in TextLayout(text, markdown=True).units]


def translated(text: str) -> str:
    """The text with every unit replaced by a numbered marker: only prose may change."""
    layout = TextLayout(text, markdown=True)
    assert layout.render([None] * len(layout.units)) == text  # untranslated: byte for byte
    return layout.render([[f"<{number}>"] for number in range(len(layout.units))])


# -- recognisers -------------------------------------------------------------------------------


@pytest.mark.parametrize(("line", "prefix"), [
    ("> quoted", "> "),
    ("> > nested", "> > "),
    (">>tight", ">>"),
    (">\t>\ttabs", ">\t>\t"),
    ("   > three spaces", "   > "),
    ("    > four spaces is code", ""),
    ("a > b", ""),
    ("", ""),
])
def test_quote_prefix_is_the_whole_nested_prefix(line: str, prefix: str) -> None:
    assert quote_prefix(line) == prefix
    assert without_quote(line) == line[len(prefix):]


def test_quote_depth_and_unquote() -> None:
    assert quote_depth(quote_prefix("> > > x")) == 3
    assert unquote("> > x", 1) == "> x"
    assert unquote("> > x", 2) == "x"
    assert unquote("> x", 2) is None
    assert unquote("plain", 0) == "plain"


@pytest.mark.parametrize(("line", "marker"), [
    ("```", "```"),
    ("````python", "````"),
    ("~~~ info `with` backticks", "~~~"),
    ("        ```", "```"),  # any indentation: fences inside list items are real
    ("\t~~~~", "~~~~"),
    ("```inline``` code", None),  # a backtick fence's info string has no backtick
    ("``", None),
    ("text ```", None),
])
def test_fence_open(line: str, marker: str | None) -> None:
    assert fence_open(line) == marker


@pytest.mark.parametrize(("line", "marker", "closes"), [
    ("```", "```", True),
    ("  `````  ", "```", True),
    ("``", "```", False),
    ("``` python", "```", False),
    ("~~~", "```", False),
    ("```", "~~~", False),
])
def test_closes_fence(line: str, marker: str, closes: bool) -> None:
    assert closes_fence(line, marker) is closes


def test_fenced_code_in_a_quote_ends_with_the_quote() -> None:
    lines = ["> ```", "> code", "after"]
    assert fenced_code(lines, 0) == FencedCode("```", depth=1, indent=0, body_end=2, end=2)
    lines = ["- item", "    ```", "    code", "    ```", "next"]
    assert fenced_code(lines, 1) == FencedCode("```", depth=0, indent=4, body_end=3, end=4)
    assert fenced_code(["``` open", "never closed"], 0) == FencedCode("```", 0, 0, 2, 2)
    assert fenced_code(["text"], 0) is None


def test_fence_body_drops_quote_markers_and_the_opening_indent() -> None:
    lines = ["  > ```", "  >   code", "  > ```"]
    fence = fenced_code(lines, 0)
    assert fence is not None and fence.end == 3
    assert fence_body(lines, 0, fence) == ["  code"]
    lines = ["  ```", "    deeper", " one", "```"]
    fence = fenced_code(lines, 0)
    assert fence is not None and fence_body(lines, 0, fence) == ["  deeper", "one"]


@pytest.mark.parametrize(("line", "is_break"), [
    ("***", True), (" - - -", True), ("___   ", True), ("   * * * *", True),
    ("--", False), ("    ---", False), ("-*-", False), ("- - x", False), ("===", False),
])
def test_thematic_break(line: str, is_break: bool) -> None:
    assert is_thematic_break(line) is is_break


@pytest.mark.parametrize(("line", "level"), [
    ("===", 1), ("=", 1), ("   ==  ", 1), ("---", 2), ("-", 2),
    ("= =", 0), ("    ===", 0), ("==x", 0), ("text", 0), ("", 0),
])
def test_setext_level(line: str, level: int) -> None:
    assert setext_level(line) == level


@pytest.mark.parametrize(("line", "heading"), [
    ("# Title", AtxHeading(1, "# ", "Title", "")),
    ("## Setup ##  ", AtxHeading(2, "## ", "Setup", " ##  ")),
    ("   ###\tTabbed", AtxHeading(3, "   ###\t", "Tabbed", "")),
    ("# C#", AtxHeading(1, "# ", "C#", "")),  # a hash not after whitespace is text
    ("#", AtxHeading(1, "#", "", "")),
    ("# #", AtxHeading(1, "# ", "", "#")),  # only closing hashes: an empty heading
    ("###### six", AtxHeading(6, "###### ", "six", "")),
    ("####### seven", None),
    ("#hashtag", None),
    ("    # indented code", None),
])
def test_atx_heading(line: str, heading: AtxHeading | None) -> None:
    assert atx_heading(line) == heading
    if heading is not None:
        assert heading.prefix + heading.text + heading.suffix == line


@pytest.mark.parametrize(("line", "end"), [
    ("- item", 2),
    ("  10) ten", 6),
    ("- [ ] task", 6),
    ("* [x]  done", 7),
    ("+ [X] done", 6),
    ("- [x]", 5),  # an empty task item
    ("-", 1),  # an empty item
    ("- [ ]task", 2),  # no space after the box: the box is text
    ("-item", 0),
    ("**bold**", 0),
    ("1234567890. too many digits", 0),
    ("2.5 apples", 0),
])
def test_list_marker_end(line: str, end: int) -> None:
    assert list_marker_end(line) == end


def test_split_cells_respects_code_and_escapes() -> None:
    line = "| `a|b` | c\\|d |"
    cells = split_cells(line, "|")
    assert cells == ["", " `a|b` ", " c\\|d ", ""]
    assert "|".join(cells) == line
    assert split_cells("a\tb\t", "\t") == ["a", "b", ""]
    assert row_cells(line) == ["`a|b`", "c\\|d"]
    assert row_cells("a | b") == ["a", "b"]
    assert row_cells("|   |") == [""]


@pytest.mark.parametrize(("header", "delimiter", "starts"), [
    ("| a | b |", "|---|:-:|", True),
    ("a | b", "--- | ---:", True),
    ("| a |", "| - |", True),
    ("| a | b |", "|---|", False),  # a different cell count: not a table (GFM)
    ("| a |", "|---|---|", False),
    ("`a|b`", "---", False),  # the only pipe is inside code
    ("Title", "---", False),  # a setext heading
    ("| a | b |", "|-x-|---|", False),
    ("| a | b |", None, False),
    ("|" + "a" * MAX_TABLE_LINE + "|b|", "|---|---|", False),
])
def test_is_table_start(header: str, delimiter: str | None, starts: bool) -> None:
    assert is_table_start(header, delimiter) is starts


def test_table_end_keeps_to_the_header_quote() -> None:
    lines = ["> | a | b |", "> |---|---|", "> | 1 | 2 |", "| 3 | 4 |"]
    assert table_end(lines, 0) == 3
    assert table_end(["| a | b |", "> |---|---|"], 0) == 0
    assert table_end(["| a | b |", "|---|---|", "| 1 | 2 |", "", "| 3 | 4 |"], 0) == 3
    assert table_end(["| a | b |"], 0) == 0
    assert not is_table_row("|" * (MAX_TABLE_LINE + 1))


def test_front_matter_end() -> None:
    assert front_matter_end(["---", "title: x", "---", "# Text"]) == 3
    assert front_matter_end(["---", "title: x", "...", "# Text"]) == 3
    assert front_matter_end(["---", "never closed"]) == 0
    assert front_matter_end(["# Text", "---"]) == 0
    assert front_matter_end([]) == 0


# -- both readers, where they used to disagree -------------------------------------------------


def test_a_fence_indented_in_a_list_item_is_code_in_both() -> None:
    text = "- step one\n\n    ```\n    # not a heading\n    run()\n    ```\n\n- step two\n"
    assert blocks(text) == [Block("list_item", "step one"),
                            Block("code", "# not a heading\nrun()"),
                            Block("list_item", "step two")]
    assert units(text) == ["step one", "step two"]


def test_equals_without_a_paragraph_is_a_rule_in_both() -> None:
    text = "Intro\n\n===\n\nText\n=\n"
    assert blocks(text) == [Block("paragraph", "Intro"), Block("heading", "Text", level=1)]
    assert units(text) == ["Intro", "Text"]
    assert translated(text) == "<0>\n\n===\n\n<1>\n=\n"


def test_nested_quotes_in_both() -> None:
    text = "> > deep words\n>\t>\ttabbed words\n> shallow words\n"
    assert blocks(text) == [Block("paragraph", "deep words\ntabbed words\nshallow words")]
    assert units(text) == ["deep words", "tabbed words", "shallow words"]
    assert translated(text) == "> > <0>\n>\t>\t<1>\n> <2>\n"


def test_a_quoted_fence_and_table_in_both() -> None:
    text = "> ```\n> # code\n> ```\n> | a | b |\n> |---|---|\n> | 1 | 2 |\n> words\n"
    assert blocks(text) == [Block("code", "# code"), Block("table", "a\tb\n1\t2"),
                            Block("paragraph", "words")]
    assert units(text) == ["a", "b", "1", "2", "words"]
    assert translated(text) == ("> ```\n> # code\n> ```\n> | <0> | <1> |\n> |---|---|\n"
                                "> | <2> | <3> |\n> <4>\n")


def test_a_delimiter_row_with_other_cell_count_is_no_table_in_either() -> None:
    text = "| a | b |\n|---|\n| c | d |\n"
    assert [block.kind for block in blocks(text)] == ["paragraph"]
    assert units(text) == ["| a | b |", "|---|", "| c | d |"]


def test_a_pipe_inside_code_in_a_table_cell_in_both() -> None:
    text = "| Name | Code |\n|---|---|\n| pipe | `a|b` |\n"
    assert blocks(text) == [Block("table", "Name\tCode\npipe\t`a|b`")]
    assert units(text) == ["Name", "Code", "pipe", "`a|b`"]
    assert translated(text) == "| <0> | <1> |\n|---|---|\n| <2> | <3> |\n"


def test_atx_headings_with_closing_hashes_in_both() -> None:
    text = "## Setup ##\n# C#\n# #\n#hashtag\n"
    assert blocks(text) == [Block("heading", "Setup", level=2), Block("heading", "C#", level=1),
                            Block("paragraph", "#hashtag")]
    assert units(text) == ["Setup", "C#", "#hashtag"]
    assert translated(text) == "## <0> ##\n# <1>\n# #\n<2>\n"


def test_task_checkboxes_are_markup_in_both() -> None:
    text = "- [x] done\n- [ ] to do\n- [ ]\n"
    assert blocks(text) == [Block("list_item", "done"), Block("list_item", "to do")]
    assert units(text) == ["done", "to do"]
    assert translated(text) == "- [x] <0>\n- [ ] <1>\n- [ ]\n"


def test_long_lines_take_linear_time_in_both() -> None:
    spaces = " " * 50_000
    heading = f"# a{spaces}b"
    table = f"| a | b{spaces}|\n|---|---|"
    hashes = "#" * 50_000
    text = f"{heading}\n\n{table}\n\n{hashes}\n"
    started = time.perf_counter()
    read = blocks(text)
    layout_units = units(text)
    assert time.perf_counter() - started < 0.5  # a generous bound: quadratic took 30 s
    assert read == [Block("heading", f"a{spaces}b", level=1),
                    Block("paragraph", f"| a | b{spaces}|\n|---|---|"), Block("paragraph", hashes)]
    # The too-long row and its delimiter are prose, here one wrapped paragraph, not cells.
    assert layout_units == [f"a{spaces}b", f"| a | b{spaces}| |---|---|", hashes]
