"""Paragraphs and columns rebuilt from glyph boxes (engine.documents.pdf_paragraphs), on pages
described as words at positions, the way the PDF child hands them over from PDFium."""

from __future__ import annotations

from engine.documents.pdf_paragraphs import Char, page_text, runs_from_chars

CHAR = 5.0  # every glyph is 5 pt wide and the text 10 pt tall (2 pt below the baseline)
SPACE: Char = (" ", 0.0, 0.0, -1.0, 0.0)
BREAK: Char = ("\n", 0.0, 0.0, 0.0, 0.0)


def line(x: float, y: float, text: str, size: float = 10.0,
         width: float | None = None) -> list[Char]:
    """One text line with its baseline at y, its words spread to ``width`` (justified) if given."""
    words = text.split()
    natural = CHAR * len(text)
    stretch = 0.0 if width is None or len(words) < 2 else (width - natural) / (len(words) - 1)
    scale = size / 10.0
    chars: list[Char] = []
    cursor = x
    for index, word in enumerate(words):
        if index:
            chars.append(SPACE)
            cursor += (CHAR + stretch) * scale
        right = cursor + CHAR * len(word) * scale
        chars.append((word, cursor, y - 0.2 * size, right, y + 0.8 * size))
        cursor = right
    return [*chars, BREAK]


def lines(rows: list[tuple[float, float, str]], width: float | None = None) -> list[Char]:
    return [char for x, y, text in rows for char in line(x, y, text, width=width)]


FULL = "the lamp glows in the quiet room at night"  # 41 characters: 205 pt
SHORT = "and then it stops"


def test_a_gap_wider_than_the_line_spacing_ends_a_paragraph() -> None:
    page = lines([(72, 700, "First paragraph, line one"), (72, 688, "and its line two."),
                  (72, 664, "Second paragraph after a gap"), (72, 652, "ends here.")])
    assert page_text(page) == ("First paragraph, line one\nand its line two.\n\n"
                               "Second paragraph after a gap\nends here.")


def test_an_indented_first_line_starts_a_paragraph() -> None:
    page = lines([(87, 700, FULL), (72, 688, FULL), (72, 676, SHORT),
                  (87, 664, FULL), (72, 652, FULL)])
    assert page_text(page) == f"{FULL}\n{FULL}\n{SHORT}\n\n{FULL}\n{FULL}"


def test_a_short_last_line_of_justified_text_ends_a_paragraph() -> None:
    rows = [(72, 700, FULL), (72, 688, FULL), (72, 676, SHORT), (72, 664, FULL),
            (72, 652, FULL), (72, 640, FULL)]
    page = [char for x, y, text in rows
            for char in line(x, y, text, width=300 if text == FULL else None)]
    assert page_text(page) == f"{FULL}\n{FULL}\n{SHORT}\n\n{FULL}\n{FULL}\n{FULL}"


def test_ragged_text_breaks_only_where_the_next_word_would_have_fitted() -> None:
    page = lines([(72, 700, FULL), (72, 688, "the lamp glows in the quiet room at"),
                  (72, 676, "nightfall and glows on until late"),  # 40 pt short: room for "A"
                  (72, 664, "A new paragraph starts with a short word"), (72, 652, FULL)])
    # "nightfall" (9 letters) would not have fitted after "at": the same paragraph goes on.
    assert page_text(page) == ("the lamp glows in the quiet room at night\n"
                               "the lamp glows in the quiet room at\n"
                               "nightfall and glows on until late\n\n"
                               "A new paragraph starts with a short word\n" + FULL)


def test_few_lines_of_any_length_stay_one_paragraph() -> None:
    # Three lines say nothing about where this page's lines end (a title page, a short note).
    page = lines([(72, 700, "ACME Annual Report 2024"), (72, 688, "The lamp glows in the dark."),
                  (72, 676, "Page 1 of 4")])
    assert page_text(page) == "ACME Annual Report 2024\nThe lamp glows in the dark.\nPage 1 of 4"


def test_a_block_of_short_lines_stays_together() -> None:
    code = ["Group ::= SEQUENCE {", "  id OBJECT IDENTIFIER,", "  value Value", "}"]
    page = lines([(72, 700, FULL), (72, 688, FULL), (72, 676, FULL), (72, 664, FULL),
                  *[(90, 652 - 12 * index, text) for index, text in enumerate(code)]])
    assert page_text(page).split("\n\n") == [
        "\n".join([FULL] * 4), "Group ::= SEQUENCE {\nid OBJECT IDENTIFIER,\nvalue Value\n}"]


def test_a_larger_heading_and_bullets_start_paragraphs() -> None:
    page = [*line(72, 712, "1 Introduction", size=14), *lines([
        (72, 700, "Lamps come in kinds:"), (72, 688, "• table lamps"), (72, 676, "• floor lamps")])]
    assert page_text(page) == ("1 Introduction\n\nLamps come in kinds:\n\n• table lamps\n\n"
                               "• floor lamps")


def test_two_columns_are_read_one_after_the_other() -> None:
    left = ["left one of the first column text", "left two of the first column text",
            "left three of the first column", "left four of the first column text"]
    right = ["right one of the second column", "right two of the second column",
             "right three of the second col", "right four of the second column"]
    rows = [(72, 700 - 12 * index, text) for index, text in enumerate(left)]
    rows += [(320, 700 - 12 * index, text) for index, text in enumerate(right)]
    rows.sort(key=lambda row: -row[1])  # drawn line by line across the page, as some writers do
    page = [*line(200, 730, "A title across both columns", size=14), *lines(rows)]
    text = page_text(page)
    assert text.split("\n\n") == ["A title across both columns", "\n".join(left + right)]


def test_a_table_is_not_taken_for_two_columns() -> None:
    rows = [(72, 700 - 12 * index, f"Lamp {index}") for index in range(6)]
    rows += [(340, 700 - 12 * index, f"{index * 10} W") for index in range(6)]
    text = page_text(lines(rows))
    assert text.split("\n")[:2] == ["Lamp 0 0 W", "Lamp 1 10 W"]


def test_runs_break_at_wide_gaps_and_superscripts_stay_on_their_line() -> None:
    chars = [*line(72, 700, "a word")[:-1], SPACE, ("gap", 200.0, 698.0, 215.0, 708.0), BREAK]
    assert [run.text for run in runs_from_chars(chars)] == ["a word", "gap"]
    footnote = [*line(72, 700, "lamps")[:-1], ("1", 97.0, 703.0, 100.0, 709.0), SPACE,
                ("glow", 103.0, 698.0, 123.0, 708.0), BREAK,
                *line(72, 688, "in the night")]
    assert page_text(footnote) == "lamps1 glow\nin the night"


def test_hostile_boxes_neither_crash_nor_blow_up() -> None:
    far = [("far", -1e300, 700.0, 1e300, 710.0), ("nan", float("nan"), 0.0, 1.0, 1.0),
           ("inf", 0.0, 0.0, float("inf"), 1.0)]
    page = [*line(72, 700, "a word"), *far, BREAK,
            *lines([(72 + 3 * index, 688 - 12 * index, FULL) for index in range(10)])]
    text = page_text(page)
    assert text.startswith("a word\n") and "far" not in text
    # A page as wide as a football pitch: the gutter search grid stays small.
    wide = lines([(x, 700 - 12 * row, "lamp " * 8) for row in range(20) for x in (0, 50_000)])
    assert page_text(wide).count("lamp") == 320


def test_right_to_left_words_keep_their_reading_order() -> None:
    # PDFium gives Hebrew in reading order; the words stand from the right edge leftwards.
    words = ["שלום", "לך", "עולם"]
    chars: list[Char] = []
    right = 540.0
    for word in words:
        left = right - CHAR * len(word)
        chars += [(word, left, 698.0, right, 708.0), SPACE]
        right = left - CHAR
    assert page_text([*chars[:-1], BREAK]) == "שלום לך עולם"
