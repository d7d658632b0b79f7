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

from tests.browser_support import TIMEOUT_MS
from tests.browser_support import log_in as log_in_page
from tests.outside_tools import axe_script, program, vnu_jar
from tests.page_walk import DOWNLOADS, Page, site_pages
from tests.support import log_in

pytestmark = [pytest.mark.browser, pytest.mark.pages]

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


# --- axe-core in Chromium ---------------------------------------------------------------------------

WIDTHS = (1280, 320)
BLANK_AND_SUBMIT = """(path) => {
  const form = [...document.querySelectorAll("form")].find((f) =>
    f.method === "post" && new URL(f.action, location.href).pathname === path);
  if (!form) return false;
  for (const el of form.elements) {
    if (el.type === "hidden" || el.type === "submit" || el.type === "button") continue;
    if (el.type === "checkbox" || el.type === "radio") el.checked = false;
    else if (el.tagName === "SELECT") el.selectedIndex = -1;
    else el.value = "";
  }
  form.noValidate = true;
  HTMLFormElement.prototype.submit.call(form);
  return true;
}"""
# At 320 px nothing may need a sideways scroll of the page (issue 17): a wide table scrolls inside
# its own box, which the page's width does not see. Names what sticks out, for the message.
SIDEWAYS = """() => {
  const width = document.documentElement.clientWidth;
  if (document.documentElement.scrollWidth <= width) return [];
  return [...document.body.querySelectorAll("*")]
    .filter((el) => el.getBoundingClientRect().right > width + 1)
    .slice(0, 3)
    .map((el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
      (el.className && typeof el.className === "string" ? "." + el.className.split(" ").join(".") : ""));
}"""
AXE_RUN = """async () => {
  const results = await axe.run(document, {resultTypes: ["violations"]});
  return results.violations.map((v) =>
    `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`);
}"""


def open_as(browser, base_url: str, width: int, user):
    context = browser.new_context(
        base_url=base_url,
        viewport={"width": width, "height": 900},
        locale="en-GB",
        bypass_csp=True,  # axe is injected as a script of the page's own
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    if user is not None:
        log_in_page(page, user)
    return context, page


def visit(page, walked: Page) -> int | None:
    """Open a walked page (for a form: fill it blank and send it); the status it answered."""
    response = page.goto(walked.path)
    if walked.submit_empty:
        with page.expect_navigation() as navigation:
            assert page.evaluate(BLANK_AND_SUBMIT, walked.path), f"{walked.path}: no form"
        response = navigation.value
    page.wait_for_load_state("load")
    return response.status if response else None


@pytest.mark.parametrize("width", WIDTHS)  # one test a width: a run on two CPUs does both at once
def test_every_page_passes_axe_and_never_scrolls_sideways_at_320_px(
    app, make_staff, browser, live_server, width
):
    axe = axe_script().read_text()
    walk = site_pages(app, make_staff)
    checked, problems = 0, []
    for role in (None, *walk.logins):
        context, page = open_as(browser, live_server, width, walk.logins.get(role))
        try:
            for walked in walk.pages:
                if walked.role != role or walked.endpoint in DOWNLOADS:
                    continue
                how = "blank form" if walked.submit_empty else "GET"
                label = f"{width}px {how} {walked.path} as {role}"
                status = visit(page, walked)
                if status != (400 if walked.submit_empty else 200):
                    problems.append(f"{label}: answered {status}")
                    continue
                if width == 320 and (wide := page.evaluate(SIDEWAYS)):
                    problems.append(f"{label}: scrolls sideways ({', '.join(wide)})")
                page.add_script_tag(content=axe)
                problems += [f"{label}: {v}" for v in page.evaluate(AXE_RUN)]
                checked += 1
        finally:
            context.close()
    assert not problems, f"{len(problems)} axe violations:\n" + "\n".join(problems)
    assert checked >= len(walk.pages) - len(DOWNLOADS), checked  # each page
