"""Every page of the app passes the Nu HTML checker (vnu.jar) and axe-core, at 1280 and 320 px.

The pages come from walking the URL map over the demo data set (tests/page_walk.py): every public
page, every staff page as the admin (who sees them all) and the door's pages as a check-in
volunteer, and each form page in its error state (posted empty). A GET route that is neither
walked nor excluded with a reason fails the walk. vnu runs once over all the saved pages (one Java
process: it is slow to start); any error fails, and so does any axe violation of any impact."""

from __future__ import annotations

import json
import subprocess
from html.parser import HTMLParser

import pytest

from chamber.auth.models import Role
from tests.outside_tools import program, vnu_jar
from tests.page_walk import DOWNLOADS, Page, site_pages
from tests.support import log_in

pytestmark = pytest.mark.browser

# vnu warnings reviewed and allowed, with the reason. Errors are never allowed.
ALLOWED_WARNINGS: dict[str, str] = {}


class FormFields(HTMLParser):
    """The fields of the page's own form (posted to its own address): names, and the CSRF token."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path
        self.inside = False
        self.found = False
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and not self.found and attrs.get("method", "").lower() == "post":
            self.inside = attrs.get("action") in (None, "", self.path)
        elif self.inside and tag in ("input", "select", "textarea") and attrs.get("name"):
            hidden = attrs.get("type") == "hidden"
            self.fields[attrs["name"]] = attrs.get("value", "") if hidden else ""

    def handle_endtag(self, tag):
        if tag == "form" and self.inside:
            self.inside, self.found = False, True


def blank_form(html: str, path: str) -> dict[str, str]:
    """The page's form with every field left empty, as someone who pressed the button at once."""
    parser = FormFields(path)
    parser.feed(html)
    assert parser.fields, f"{path}: no form posting to itself"
    return parser.fields


def fetch_all(app, walk) -> list[tuple[Page, int, str, str]]:
    """Each page through the test client as its role: (page, status, content type, body)."""
    clients = {None: app.test_client()}
    for role, user in walk.logins.items():
        clients[role] = app.test_client()
        log_in(clients[role], user)
    fetched = []
    for page in sorted(walk.pages, key=lambda p: p.submit_empty):  # forms posted last
        client = clients[page.role]
        response = client.get(page.path)
        if page.submit_empty and response.status_code == 200:
            response = client.post(page.path, data=blank_form(response.text, page.path))
        fetched.append((page, response.status_code, response.mimetype, response.text))
    return fetched


def test_every_page_is_valid_html(app, make_staff, tmp_path):
    java, jar = program("java"), vnu_jar()
    walk = site_pages(app, make_staff)
    files, problems = {}, []
    for n, (page, status, mimetype, body) in enumerate(fetch_all(app, walk)):
        label = f"{'POST (empty)' if page.submit_empty else 'GET'} {page.path} as {page.role}"
        expected = (400,) if page.submit_empty else (200,)
        if status not in expected or mimetype != "text/html":
            problems.append(f"{label}: {status} {mimetype}")
            continue
        path = tmp_path / f"page-{n:03}.html"
        path.write_text(body)
        files[str(path)] = label
    result = subprocess.run(
        [java, "-Xss16m", "-jar", str(jar), "--format", "json", "--exit-zero-always", *files],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    messages = json.loads(result.stderr or result.stdout)["messages"]
    warnings = []
    for message in messages:
        where = files.get(message.get("url", "").removeprefix("file:"), message.get("url"))
        text = f"{where} line {message.get('lastLine')}: {message['message']}"
        if message["type"] == "error" or message.get("subType") == "fatal":
            problems.append(text)
        elif message["message"] not in ALLOWED_WARNINGS:
            warnings.append(text)
    print("\n".join(warnings))
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)
    assert not warnings, "vnu warnings (fix, or allow with a reason):\n" + "\n".join(warnings)
