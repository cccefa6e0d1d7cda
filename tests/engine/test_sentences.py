# ruff: noqa: E501 (the cases are quoted whole, one per line)
"""Sentence boundaries: the "golden rules" of sentence splitting, and our own hard cases.

The English, German and Japanese cases are those of the Pragmatic Segmenter golden rules that
pySBD tests against (issue 27 measured 52 of them right before, pySBD 72 of 73). Left out: "At 5
a.m. Mr. Smith ... at 6 P.M. Mr. Smith then ...", which wants a boundary after "P.M." but none
after "a.m." before the same "Mr."; we keep both joined. The last cases are ours.
"""

from __future__ import annotations

import pytest

from engine.text.sentences import split_sentences

CASES = [
    ('Hello World. My name is Jonas.',
     ['Hello World.', 'My name is Jonas.']),
    ('What is your name? My name is Jonas.',
     ['What is your name?', 'My name is Jonas.']),
    ('There it is! I found it.',
     ['There it is!', 'I found it.']),
    ('My name is Jonas E. Smith.',
     ['My name is Jonas E. Smith.']),
    ('Please turn to p. 55.',
     ['Please turn to p. 55.']),
    ('Were Jane and co. at the party?',
     ['Were Jane and co. at the party?']),
    ('They closed the deal with Pitt, Briggs & Co. at noon.',
     ['They closed the deal with Pitt, Briggs & Co. at noon.']),
    ("Let's ask Jane and co. They should know.",
     ["Let's ask Jane and co.", 'They should know.']),
    ('They closed the deal with Pitt, Briggs & Co. It closed yesterday.',
     ['They closed the deal with Pitt, Briggs & Co.', 'It closed yesterday.']),
    ('I can see Mt. Fuji from here.',
     ['I can see Mt. Fuji from here.']),
    ("St. Michael's Church is on 5th st. near the light.",
     ["St. Michael's Church is on 5th st. near the light."]),
    ("That is JFK Jr.'s book.",
     ["That is JFK Jr.'s book."]),
    ('I visited the U.S.A. last year.',
     ['I visited the U.S.A. last year.']),
    ('I live in the E.U. How about you?',
     ['I live in the E.U.', 'How about you?']),
    ('I live in the U.S. How about you?',
     ['I live in the U.S.', 'How about you?']),
    ('I work for the U.S. Government in Virginia.',
     ['I work for the U.S. Government in Virginia.']),
    ('I have lived in the U.S. for 20 years.',
     ['I have lived in the U.S. for 20 years.']),
    ('She has $100.00 in her bag.',
     ['She has $100.00 in her bag.']),
    ('She has $100.00. It is in her bag.',
     ['She has $100.00.', 'It is in her bag.']),
    ('He teaches science (He previously worked for 5 years as an engineer.) at the local University.',
     ['He teaches science (He previously worked for 5 years as an engineer.) at the local University.']),
    ('Her email is Jane.Doe@example.com. I sent her an email.',
     ['Her email is Jane.Doe@example.com.', 'I sent her an email.']),
    ('The site is: https://www.example.50.com/new-site/awesome_content.html. Please check it out.',
     ['The site is: https://www.example.50.com/new-site/awesome_content.html.', 'Please check it out.']),
    ("She turned to him, 'This is great.' she said.",
     ["She turned to him, 'This is great.' she said."]),
    ('She turned to him, "This is great." she said.',
     ['She turned to him, "This is great." she said.']),
    ('She turned to him, "This is great." She held the book out to show him.',
     ['She turned to him, "This is great."', 'She held the book out to show him.']),
    ('Hello!! Long time no see.',
     ['Hello!!', 'Long time no see.']),
    ('Hello?? Who is there?',
     ['Hello??', 'Who is there?']),
    ('Hello!? Is that you?',
     ['Hello!?', 'Is that you?']),
    ('Hello?! Is that you?',
     ['Hello?!', 'Is that you?']),
    ('1.) The first item 2.) The second item',
     ['1.) The first item', '2.) The second item']),
    ('1.) The first item. 2.) The second item.',
     ['1.) The first item.', '2.) The second item.']),
    ('1) The first item 2) The second item',
     ['1) The first item', '2) The second item']),
    ('1) The first item. 2) The second item.',
     ['1) The first item.', '2) The second item.']),
    ('1. The first item 2. The second item',
     ['1. The first item', '2. The second item']),
    ('1. The first item. 2. The second item.',
     ['1. The first item.', '2. The second item.']),
    ('• 9. The first item • 10. The second item',
     ['• 9. The first item', '• 10. The second item']),
    ('⁃9. The first item ⁃10. The second item',
     ['⁃9. The first item', '⁃10. The second item']),
    ('a. The first item b. The second item c. The third list item',
     ['a. The first item', 'b. The second item', 'c. The third list item']),
    ('You can find it at N°. 1026.253.553. That is where the treasure is.',
     ['You can find it at N°. 1026.253.553.', 'That is where the treasure is.']),
    ('She works at Yahoo! in the accounting department.',
     ['She works at Yahoo! in the accounting department.']),
    ('We make a good team, you and I. Did you see Albert I. Jones yesterday?',
     ['We make a good team, you and I.', 'Did you see Albert I. Jones yesterday?']),
    ('Thoreau argues that by simplifying one’s life, “the laws of the universe will appear less complex. . . .”',
     ['Thoreau argues that by simplifying one’s life, “the laws of the universe will appear less complex. . . .”']),
    ('"Bohr [...] used the analogy of parallel stairways [...]" (Smith 55).',
     ['"Bohr [...] used the analogy of parallel stairways [...]" (Smith 55).']),
    ('I never meant that.... She left the store.',
     ['I never meant that....', 'She left the store.']),
    ("I wasn’t really ... well, what I mean...see . . . what I'm saying, the thing is . . . I didn’t mean it.",
     ["I wasn’t really ... well, what I mean...see . . . what I'm saying, the thing is . . . I didn’t mean it."]),
    ('„Ich habe heute keine Zeit“, sagte die Frau und flüsterte leise: „Und auch keine Lust.“ Wir haben 1.000.000 Euro.',
     ['„Ich habe heute keine Zeit“, sagte die Frau und flüsterte leise: „Und auch keine Lust.“', 'Wir haben 1.000.000 Euro.']),
    ('Was sind die Konsequenzen der Abstimmung vom 12. Juni?',
     ['Was sind die Konsequenzen der Abstimmung vom 12. Juni?']),
    ('これはペンです。それはマーカーです。',
     ['これはペンです。', 'それはマーカーです。']),
    ('それは何ですか？ペンですか？',
     ['それは何ですか？', 'ペンですか？']),
    ('良かったね！すごい！',
     ['良かったね！', 'すごい！']),
    ('他说：“你好。”然后走了。',
     ['他说：“你好。”', '然后走了。']),
    ('This is Mr. Smith. He is a Ph.D. student at M.I.T. in Boston.',
     ['This is Mr. Smith.', 'He is a Ph.D. student at M.I.T. in Boston.']),
    ('See Fig. 3 and Eq. 2 for details. The results hold.',
     ['See Fig. 3 and Eq. 2 for details.', 'The results hold.']),
    ('The meeting is on Jan. 5 at 10 a.m. in Room 4. Bring notes.',
     ['The meeting is on Jan. 5 at 10 a.m. in Room 4.', 'Bring notes.']),
    ('Version 3.11 was released. It is fast.',
     ['Version 3.11 was released.', 'It is fast.']),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[text[:40] for text, _ in CASES])
def test_sentence_boundaries(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


def test_a_number_ends_a_sentence_outside_a_list() -> None:
    assert split_sentences("I was born in 1990. Then I moved. We met in room 12. It was late.") \
        == ["I was born in 1990.", "Then I moved.", "We met in room 12.", "It was late."]


def test_only_markers_that_count_up_make_a_list() -> None:
    assert split_sentences("Call 1) Ann and 3) Bob today.") == ["Call 1) Ann and 3) Bob today."]
    assert split_sentences("Call 1) Ann 2) Bob") == ["Call", "1) Ann", "2) Bob"]
