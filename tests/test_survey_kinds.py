"""Survey question kinds: every member of `QuestionKind` has its class in `kinds.KINDS`, and each
kind reads a good answer, and refuses a bad one (missing when required, out of range or not an
option, hostile text) with a message that names the question."""

from __future__ import annotations

import pytest
from werkzeug.datastructures import MultiDict

from chamber.events.models import AgendaItem, AgendaKind
from chamber.surveys import kinds
from chamber.surveys.kinds import KINDS, MAX_TEXT, AnswerValue, Kind
from chamber.surveys.models import YES_NO_CHOICES, Question, QuestionKind
from chamber.surveys.responses import read_answers
from chamber.surveys.tallies import Tally

OPTIONS = ["Cyber Essentials", "Café ☕ 東京", "<b>Action Fraud</b>"]
TALK = AgendaItem(id=31, title="What one tweet gives away", kind=AgendaKind.talk)
PANEL = AgendaItem(id=32, title="Ask the experts", kind=AgendaKind.panel)

# Hostile text: none of it may pass as a number or an option, and free text keeps it as typed.
MARKUP = '<script>alert("x")</script>'
TEMPLATE = "{{ 7*7 }}"
SQL = "1'; DROP TABLE survey_answer; --"
CRLF = "4\r\nSet-Cookie: session=x"


def question(kind: QuestionKind, *, required: bool = True, choices=OPTIONS) -> Question:
    return Question(
        id=7,
        kind=kind,
        text="How was it?",
        required=required,
        choices="\n".join(choices) if kind.value.endswith("choice") else "",
    )


def read(kind: QuestionKind, form: dict | MultiDict, *, required: bool = True):
    return read_answers([question(kind, required=required)], [TALK, PANEL], form)


# --- the registry --------------------------------------------------------------------------------


def test_every_question_kind_has_its_class_in_the_registry():
    assert set(KINDS) == set(QuestionKind)
    for member, kind in KINDS.items():
        assert isinstance(kind, Kind)
        assert kind.member is member
        assert type(kind).read is not Kind.read, f"{member} cannot read its answers"
        assert kind.tallies, f"{member} has no figures"
        if kind.breakable:  # broken down from the same grouped counts, grouped by the business
            assert Tally.texts not in kind.tallies
    assert {m for m, k in KINDS.items() if k.breakable} == {
        QuestionKind.rating,
        QuestionKind.nps,
        QuestionKind.single_choice,
        QuestionKind.multiple_choice,
        QuestionKind.yes_no,
    }


def test_templates_draw_each_kind_by_the_macros_it_names_and_never_test_the_kind(app):
    """Issue 16 item 6: the survey templates ask and report a question through the macros its
    kind names (`asked_as`, `reported_as`); none of them tests which kind a question is."""
    import re
    from pathlib import Path

    import chamber

    folder = Path(chamber.__file__).parent / "templates" / "surveys"
    questions = (folder / "_questions.html").read_text(encoding="utf-8")
    results = (folder / "_results_macros.html").read_text(encoding="utf-8")
    for member, kind in KINDS.items():
        assert f"'{kind.asked_as}': {kind.asked_as}_input" in questions, member
        assert f"'{kind.reported_as}': {kind.reported_as}_figure" in results, member
    assert {m for m, k in KINDS.items() if k.has_choices} == {
        QuestionKind.single_choice,
        QuestionKind.multiple_choice,
        QuestionKind.yes_no,
    }
    assert {m for m, k in KINDS.items() if k.multiple} == {QuestionKind.multiple_choice}
    tests_of_kind = re.compile(r"kind\.value\s*(==|!=|in\b)|kind\s*(==|!=)\s*'")
    for template in sorted(folder.rglob("*.html")):
        text = template.read_text(encoding="utf-8")
        assert not tests_of_kind.search(text), f"{template.name} tests a question's kind"


def test_every_kind_lays_out_its_csv_columns():
    items = lambda: [(TALK.id, TALK.title), (PANEL.id, PANEL.title)]  # noqa: E731
    for member, kind in KINDS.items():
        columns = kind.columns(question(member), 3, items)
        assert columns and all(c.heading.startswith("Q3 How was it?") for c in columns)
        keys = {(c.question_id, c.agenda_item_id) for c in columns}
        assert {(7, kind.column_item(TALK.id))} <= keys
    multiple = KINDS[QuestionKind.multiple_choice].columns(
        question(QuestionKind.multiple_choice), 1, items
    )
    assert multiple[0].write([OPTIONS[2], OPTIONS[0]]) == f"{OPTIONS[0]}; {OPTIONS[2]}"


# --- good answers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "form", "values"),
    [
        (QuestionKind.rating, {"q7": "1"}, [AnswerValue(7, number=1)]),
        (QuestionKind.rating, {"q7": " 5 "}, [AnswerValue(7, number=5)]),
        (QuestionKind.nps, {"q7": "0"}, [AnswerValue(7, number=0)]),
        (QuestionKind.nps, {"q7": "10"}, [AnswerValue(7, number=10)]),
        (
            QuestionKind.agenda_rating,
            {"q7-31": "4", "q7-32": "2"},
            [
                AnswerValue(7, number=4, agenda_item_id=31),
                AnswerValue(7, number=2, agenda_item_id=32),
            ],
        ),
        (QuestionKind.single_choice, {"q7": OPTIONS[1]}, [AnswerValue(7, choice=OPTIONS[1])]),
        (QuestionKind.single_choice, {"q7": OPTIONS[2]}, [AnswerValue(7, choice=OPTIONS[2])]),
        (
            QuestionKind.yes_no,
            {"q7": "Prefer not to say"},
            [AnswerValue(7, choice="Prefer not to say")],
        ),
        (
            QuestionKind.multiple_choice,  # in the question's order, each once
            MultiDict([("q7", OPTIONS[2]), ("q7", OPTIONS[0]), ("q7", OPTIONS[2])]),
            [AnswerValue(7, choice=OPTIONS[0]), AnswerValue(7, choice=OPTIONS[2])],
        ),
        (
            QuestionKind.free_text,
            {"q7": "  More on phishing.  "},
            [AnswerValue(7, text="More on phishing.")],
        ),
    ],
)
def test_each_kind_reads_a_good_answer(kind, form, values):
    read_back = read(kind, form)
    assert read_back.ok, read_back.errors
    assert read_back.values == values


def test_a_yes_no_question_offers_its_three_answers_whatever_its_choices_say():
    for choice in YES_NO_CHOICES:
        assert read(QuestionKind.yes_no, {"q7": choice}).values == [AnswerValue(7, choice=choice)]


@pytest.mark.parametrize(
    "text", [MARKUP, TEMPLATE, SQL, "Café ☕ 東京 — naïve “quotes”", "é" * MAX_TEXT]
)
def test_free_text_is_stored_as_typed(text):
    assert read(QuestionKind.free_text, {"q7": text}).values == [AnswerValue(7, text=text)]


def test_free_text_line_ends_become_line_feeds():
    read_back = read(QuestionKind.free_text, {"q7": "One\r\nTwo\rThree\nFour"})
    assert read_back.values == [AnswerValue(7, text="One\nTwo\nThree\nFour")]


# --- missing answers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "summary", "beside"),
    [
        (QuestionKind.rating, "Select an answer to “How was it?”.", "Select an answer."),
        (QuestionKind.nps, "Select an answer to “How was it?”.", "Select an answer."),
        (QuestionKind.single_choice, "Select an answer to “How was it?”.", "Select an answer."),
        (QuestionKind.yes_no, "Select an answer to “How was it?”.", "Select an answer."),
        (
            QuestionKind.multiple_choice,
            "Select at least one answer to “How was it?”.",
            "Select at least one answer.",
        ),
        (QuestionKind.free_text, "Enter an answer to “How was it?”.", "Enter an answer."),
    ],
)
def test_a_required_question_left_empty_is_refused_and_an_optional_one_is_not(
    kind, summary, beside
):
    for empty in ({}, {"q7": ""}):
        read_back = read(kind, empty)
        assert read_back.errors == {"q7": summary}
        assert read_back.beside == {"q7": beside}
        assert read_back.values == []
        assert read(kind, empty, required=False).ok


def test_a_required_agenda_rating_needs_each_item_rated():
    read_back = read(QuestionKind.agenda_rating, {"q7-31": "5"})
    assert read_back.errors == {"q7-32": "Rate “Ask the experts” from 1 to 5."}
    assert read_back.beside == {"q7-32": "Rate this session from 1 to 5."}
    assert read(QuestionKind.agenda_rating, {"q7-31": "5"}, required=False).ok


def test_a_blank_free_text_answer_is_missing():
    assert read(QuestionKind.free_text, {"q7": " \r\n\t "}).errors == {
        "q7": "Enter an answer to “How was it?”."
    }


# --- bad answers ---------------------------------------------------------------------------------

NOT_NUMBERS = [
    MARKUP,
    TEMPLATE,
    SQL,
    CRLF,
    "５",
    "٥",
    "²",
    "0005",
    "4.0",
    "-1",
    "+3",
    "1e1",
    "x" * 5000,
]


@pytest.mark.parametrize("raw", [*NOT_NUMBERS, "6", "0", "99"])
def test_a_rating_outside_one_to_five_is_refused(raw):
    read_back = read(QuestionKind.rating, {"q7": raw})
    assert read_back.errors == {"q7": "Choose a number from 1 to 5 for “How was it?”."}
    assert read_back.beside == {"q7": "Choose a number from 1 to 5."}
    assert read_back.values == []
    assert read_back.entered == {"q7": [raw]}  # shown again as typed (and escaped by the page)


@pytest.mark.parametrize("raw", [*NOT_NUMBERS, "11", "100"])
def test_a_score_outside_zero_to_ten_is_refused(raw):
    read_back = read(QuestionKind.nps, {"q7": raw})
    assert read_back.errors == {"q7": "Choose a number from 0 to 10 for “How was it?”."}
    assert read_back.values == []


@pytest.mark.parametrize("raw", [*NOT_NUMBERS, "6", "0"])
def test_an_agenda_rating_outside_one_to_five_is_refused_beside_its_item(raw):
    read_back = read(QuestionKind.agenda_rating, {"q7-31": "3", "q7-32": raw})
    assert read_back.errors == {"q7-32": "Choose a number from 1 to 5 for “Ask the experts”."}
    assert read_back.beside == {"q7-32": "Choose a number from 1 to 5."}


NOT_OPTIONS = [
    MARKUP,
    TEMPLATE,
    SQL,
    "Cyber Essentials\r\n",
    " Cyber Essentials",
    "cyber essentials",
    "Café ☕ 東京".upper(),
    "Action Fraud",
    "Cyber Essentials" * 100,
]


@pytest.mark.parametrize("raw", NOT_OPTIONS)
def test_a_single_choice_not_among_the_options_is_refused(raw):
    read_back = read(QuestionKind.single_choice, {"q7": raw})
    assert read_back.errors == {"q7": "Choose one of the options listed for “How was it?”."}
    assert read_back.beside == {"q7": "Choose one of the options listed."}
    assert read_back.values == []


@pytest.mark.parametrize("raw", [*NOT_OPTIONS, "yes", "Υes", "Maybe", OPTIONS[0]])  # "Υ": upsilon
def test_a_yes_no_answer_other_than_its_three_is_refused(raw):
    read_back = read(QuestionKind.yes_no, {"q7": raw})
    assert read_back.errors == {"q7": "Choose one of the options listed for “How was it?”."}


@pytest.mark.parametrize("raw", NOT_OPTIONS)
def test_one_multiple_choice_pick_not_among_the_options_refuses_them_all(raw):
    read_back = read(QuestionKind.multiple_choice, MultiDict([("q7", OPTIONS[0]), ("q7", raw)]))
    assert read_back.errors == {"q7": "Choose only from the options listed for “How was it?”."}
    assert read_back.beside == {"q7": "Choose only from the options listed."}
    assert read_back.values == []


@pytest.mark.parametrize("character", ["\x00", "\x07", "\x1b", "\x7f", "\x0b", "\x0c"])
def test_free_text_with_a_control_character_is_refused(character):
    read_back = read(QuestionKind.free_text, {"q7": f"Hello{character}there"})
    assert read_back.errors == {
        "q7": "Your answer to “How was it?” contains a character that is not allowed."
    }
    assert read_back.beside == {"q7": "Your answer contains a character that is not allowed."}


def test_free_text_over_the_limit_is_refused_with_its_length():
    read_back = read(QuestionKind.free_text, {"q7": "é" * (MAX_TEXT + 1)})
    assert read_back.errors == {
        "q7": "Your answer to “How was it?” must be 2,000 characters or fewer (it has 2,001)."
    }
    assert read_back.beside == {
        "q7": "Your answer must be 2,000 characters or fewer (it has 2,001)."
    }
    assert read_back.values == []


def test_a_long_question_is_shortened_in_the_message():
    long = Question(id=7, kind=QuestionKind.rating, text="Why " * 40, required=True, choices="")
    (message,) = read_answers([long], [], {}).errors.values()
    assert message.startswith("Select an answer to “Why Why") and "…”." in message
    assert len(message) < 120


def test_every_answer_is_checked_and_each_field_keeps_its_own_message():
    questions = [
        Question(
            id=n,
            kind=member,
            text=f"Question {n}",
            required=True,
            choices="\n".join(OPTIONS) if member.value.endswith("choice") else "",
        )
        for n, member in enumerate(QuestionKind, start=1)
    ]
    read_back = read_answers(questions, [TALK], {f"q{n}": TEMPLATE for n in range(1, 8)})
    assert not read_back.ok
    assert set(read_back.errors) == {
        "q1",
        "q2",
        "q3",
        "q4",
        "q5",
        "q7-31",
    }  # free text (q6) is fine
    assert read_back.values == [AnswerValue(6, text=TEMPLATE)]
    assert kinds.kind_of(questions[0]) is KINDS[QuestionKind.rating]
