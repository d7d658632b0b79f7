"""The shared kernel: safe Markdown, slugs, safe redirects, link tokens."""

from __future__ import annotations

import re

import pytest

from chamber.core.markdown import render_markdown
from chamber.core.text import counted, is_safe_redirect, slugify
from chamber.core.tokens import hash_token, new_token


def test_markdown_renders_formatting_and_safe_links():
    html = render_markdown(
        "**Cyber Essentials** see [NCSC](https://www.ncsc.gov.uk)\n\n- Audit\n- Plan"
    )
    assert "<strong>Cyber Essentials</strong>" in html
    assert '<a href="https://www.ncsc.gov.uk" rel="noopener noreferrer nofollow">NCSC</a>' in html
    assert "<li>Audit</li>" in html


@pytest.mark.parametrize(
    "hostile",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "[click](javascript:alert(1))",
        '<a href="javascript:alert(1)">x</a>',
        "<iframe src=https://evil.example></iframe>",
        "[x](data:text/html;base64,PHNjcmlwdD4=)",
    ],
)
def test_markdown_never_lets_script_through(hostile):
    tags = re.findall(r"<[a-z][^>]*>", str(render_markdown(hostile)).lower())
    assert tags  # the text is still shown, escaped, inside a paragraph
    for tag in tags:
        for forbidden in ("script", "onerror", "javascript:", "iframe", "img", "data:"):
            assert forbidden not in tag


def test_markdown_headings_sit_below_the_page_headings():
    assert "<h3>Title</h3>" in render_markdown("# Title")


def test_markdown_of_nothing_is_empty():
    assert render_markdown(None) == "" and render_markdown("") == ""


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ("Cybercrime Seminar 2026", "cybercrime-seminar-2026"),
        ("Zoë's  café — O'Brien & co.", "zoes-cafe-obrien-co"),
        ("李", "event"),
        ("  --  ", "event"),
        # Cut at the end of a word, not in one, within 80 characters.
        (
            "Cybercrime seminar: what Brexit's customs changes mean for Hertfordshire's exporters",
            "cybercrime-seminar-what-brexits-customs-changes-mean-for-hertfordshires",
        ),
        ("x" * 100, "x" * 80),  # one word: cut where it must be
        ("a " + "y" * 100, "a-" + "y" * 78),
    ],
)
def test_slugify(title, slug):
    assert slugify(title) == slug and len(slug) <= 80


@pytest.mark.parametrize(
    ("target", "safe"),
    [
        ("/staff/events/", True),
        ("/staff/events/?show=all", True),
        ("https://evil.example/", False),
        ("//evil.example/", False),
        ("/\\evil.example", False),
        ("javascript:alert(1)", False),
        ("", False),
        (None, False),
        ("/staff\r\nSet-Cookie: x=1", False),
    ],
)
def test_only_local_paths_are_safe_redirects(target, safe):
    assert is_safe_redirect(target) is safe


def test_tokens_carry_256_bits_and_are_stored_as_sha256():
    token = new_token()
    assert len(token) >= 43 and token != new_token()
    assert len(hash_token(token)) == 64 and hash_token(token) != token


def test_a_count_agrees_with_its_noun():
    assert [counted(n, "contact") for n in (0, 1, 2)] == ["0 contacts", "1 contact", "2 contacts"]
    assert (
        counted(1, "person", "people") == "1 person"
        and counted(3, "person", "people") == "3 people"
    )
