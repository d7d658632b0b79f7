"""The resource pack: an event's resources grouped (event-wide, then each talk in agenda order), a
page that prints cleanly on A4, and one self-contained HTML file to keep offline. And the demo
library built from the seed article."""

from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser

import pytest

from chamber.demo import load_demo, seminar
from chamber.demo import resources as demo_resources
from chamber.events.models import Event, EventStatus
from chamber.extensions import db
from chamber.resources import attachments, services
from chamber.resources.models import (
    AgendaItemResource,
    EventResource,
    Resource,
    ResourceKind,
    ResourceStatus,
)
from tests.test_security_headers import csp_directives, header_problems, live_markup


@pytest.fixture
def packed_event(make_event, make_item, make_speaker):
    """An event with resources on the whole event and on two of its three talks."""
    event = make_event(slug="cyber", title="Cybercrime seminar")
    speaker = make_speaker("Stephanie Frankish", "Crime Reduction Unit")
    late = make_item(event, minutes_in=90, title="Insurance")  # added first, held last
    early = make_item(event, minutes_in=30, title="Cyber Essentials and a plan", speakers=[speaker])
    make_item(event, minutes_in=60, title="Coffee")

    def add(title, **fields):
        fields.setdefault("kind", ResourceKind.link)
        if fields["kind"] == ResourceKind.link:
            fields.setdefault("url", f"https://example.org/{title.lower().replace(' ', '-')}")
        resource = Resource(
            slug=title.lower().replace(" ", "-"),
            title=title,
            status=fields.pop("status", ResourceStatus.published),
            **fields,
        )
        db.session.add(resource)
        db.session.flush()
        return resource

    ncsc = add("NCSC", url="https://www.ncsc.gov.uk/", publisher="NCSC")
    cesg = add("CESG", url="http://www.cesg.gov.uk/", superseded_by_id=ncsc.id,
               staff_note="CESG became part of the NCSC in October 2016.")  # fmt: skip
    vouchers = add("Vouchers", url="https://vouchers.innovateuk.org/cyber-security?a=1&b=2")
    plan = add(
        "Five steps", kind=ResourceKind.guide,
        body="1. **Audit**\n2. **Plan**\n3. **Execute**\n4. **Monitor**\n5. **Repeat**\n\n"
        "See [Cyber Essentials](https://www.ncsc.gov.uk/cyberessentials/overview).",
    )  # fmt: skip
    draft = add("Draft thing", status=ResourceStatus.draft)
    insurance = add("Insurance guide", url="https://example.org/insurance")
    for position, resource in enumerate((cesg, vouchers, draft)):
        db.session.add(EventResource(event_id=event.id, resource_id=resource.id, position=position))
    db.session.add(AgendaItemResource(agenda_item_id=early.id, resource_id=plan.id, position=0))
    db.session.add(AgendaItemResource(agenda_item_id=late.id, resource_id=insurance.id))
    db.session.commit()
    return event


def headings(html: str) -> list[str]:
    return [
        " ".join(re.sub(r"<[^>]+>", " ", h).split())
        for h in re.findall(r"<h2[^>]*>(.*?)</h2>", html, re.S)
    ]


def static_text(client, name: str) -> str:
    response = client.get(f"/static/{name}")
    try:
        assert response.status_code == 200
        return response.get_data(as_text=True)
    finally:
        response.close()  # static files are streamed from an open file


# --- the pack page -------------------------------------------------------------------------------


def test_the_pack_groups_resources_by_the_whole_event_then_each_talk_in_agenda_order(
    app, client, packed_event
):
    response = client.get("/events/cyber/resources")
    assert response.status_code == 200
    page = response.text
    times = {item.title: f"{item.local_start:%H:%M}" for item in packed_event.agenda_items}
    assert headings(page) == [
        "For the whole event",
        f"{times['Cyber Essentials and a plan']} Cyber Essentials and a plan",
        f"{times['Insurance']} Insurance",
    ]
    assert page.index("CESG") < page.index("Vouchers") < page.index("Five steps")
    assert "Draft thing" not in page and "Coffee" not in page
    # Every link's address is written out; the guide is there in full; replacements are named.
    # A replaced link is listed as its successor, naming the old one with its page in the library
    # (not its dead address).
    assert '<p class="resource-url">https://www.ncsc.gov.uk/</p>' in page
    assert "http://www.cesg.gov.uk/" not in page
    assert (
        f'Replaces:</strong> <a href="{app.config["BASE_URL"]}/resources/cesg" class="has-address">'
        in page
    )
    assert "https://vouchers.innovateuk.org/cyber-security?a=1&amp;b=2" in page
    assert "<strong>Audit</strong>" in page and "<strong>Repeat</strong>" in page
    assert (
        '<span class="written-address">(https://www.ncsc.gov.uk/cyberessentials/overview)' in page
    )
    assert "CESG became part of the NCSC in October 2016." in page
    assert "Stephanie Frankish" in page
    assert 'href="/events/cyber/resources.html"' in page and "Download for offline use" in page
    assert live_markup(page) == []
    assert header_problems(response, "/events/cyber/resources") == []


def test_the_pack_prints_on_a4_with_addresses_and_without_navigation(client, packed_event):
    page = client.get("/events/cyber/resources").text
    assert 'href="/static/resources.css"' in page
    css = static_text(client, "resources.css")
    print_rules = css[css.index("@media print") :]
    assert re.search(r"@page\s*{\s*size:\s*A4;\s*margin:", print_rules)
    assert 'content: " (" attr(href) ")"' in print_rules
    assert ".screen-only" in print_rules and "display: none" in print_rules
    # The site's own print rules hide the header, the staff bar and the footer.
    base_css = static_text(client, "chamber.css")
    base_print = base_css[base_css.index("@media print") :]
    assert ".site-header" in base_print and ".site-footer" in base_print


def test_the_event_page_links_to_its_pack(client, packed_event):
    page = client.get("/events/cyber").text
    assert 'href="/events/cyber/resources"' in page
    assert 'href="/events/cyber/resources.html"' in page


def test_an_event_with_no_resources_has_an_empty_pack_that_says_so(client, make_event):
    event = make_event()
    page = client.get(f"/events/{event.slug}/resources").text
    assert "There are no resources for this event yet." in page
    assert "Download for offline use" not in page


@pytest.mark.parametrize("status", [EventStatus.draft, EventStatus.cancelled])
def test_only_a_published_events_pack_is_public(client, organiser_client, make_event, status):
    event = make_event(status=status)
    for suffix in ("resources", "resources.html"):
        assert client.get(f"/events/{event.slug}/{suffix}").status_code == 404
        assert organiser_client.get(f"/events/{event.slug}/{suffix}").status_code == 200


# --- the offline file ----------------------------------------------------------------------------


class Assets(HTMLParser):
    """Everything in a document that would fetch or run something."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []
        self.links: list[str] = []
        self.style_blocks = 0

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "style":
            self.style_blocks += 1
        if tag in {"script", "link", "img", "iframe", "object", "embed", "source", "video"}:
            self.found.append(tag)
        if any(name.startswith("on") for name in attributes) or "style" in attributes:
            self.found.append(f"{tag} with inline behaviour")
        if tag == "a" and attributes.get("href"):
            self.links.append(attributes["href"])


def test_the_download_is_one_self_contained_html_file(app, client, packed_event):
    response = client.get("/events/cyber/resources.html")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert response.headers["Content-Disposition"] == 'attachment; filename="cyber-resources.html"'
    html = response.text
    assets = Assets()
    assets.feed(html)
    assert assets.found == []  # no scripts, stylesheets, images or frames to fetch
    assert assets.style_blocks == 1
    assert "url(" not in html and "@import" not in html
    # Every link points off-site in full, and its address is written out for paper.
    assert assets.links
    text = re.sub(r"<[^>]+>", " ", html).replace("&amp;", "&")
    for href in assets.links:
        assert href.startswith(("http://", "https://")), href
        assert href.replace("&amp;", "&") in text, f"{href} is not written out"
    assert "<strong>Audit</strong>" in html and "<strong>Repeat</strong>" in html
    assert "Draft thing" not in html
    assert (
        f"Saved from {app.config['BASE_URL']}/events/cyber/resources" in html
    )  # the public address, not the Host


def test_the_download_allows_its_own_stylesheet_and_nothing_else(client, packed_event):
    response = client.get("/events/cyber/resources.html")
    directives = csp_directives(response.headers["Content-Security-Policy"])
    css = re.search(r"<style>(.*?)</style>", response.text, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    assert directives["style-src"] == [f"'sha256-{digest}'"]
    assert directives["default-src"] == ["'none'"]
    assert "script-src" not in directives
    assert "@page { size: A4;" in css
    assert header_problems(response, "/events/cyber/resources.html") == []


def test_hostile_resource_text_is_escaped_in_the_pack_and_the_download(client, packed_event):
    resource = Resource(
        slug="hostile", title="<script>alert(1)</script>", kind=ResourceKind.link,
        status=ResourceStatus.published, url='https://example.org/"><script>alert(2)</script>',
        staff_note="<img src=x onerror=alert(3)>", description="'; DROP TABLE resource; --",
    )  # fmt: skip
    db.session.add(resource)
    db.session.flush()
    db.session.add(EventResource(event_id=packed_event.id, resource_id=resource.id, position=9))
    db.session.commit()
    for path in ("/events/cyber/resources", "/events/cyber/resources.html", "/events/cyber"):
        html = client.get(path).text
        assert "<script>alert" not in html and "<img src=x" not in html, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, path


def test_the_packs_queries_do_not_grow_with_its_resources(client, packed_event):
    from tests.support import count_queries

    def queries() -> int:
        client.get("/events/cyber/resources.html")
        with count_queries() as statements:
            client.get("/events/cyber/resources.html")
        return len(statements)

    few = queries()
    item_ids = [item.id for item in packed_event.agenda_items]
    for n in range(15):
        resource = Resource(slug=f"more-{n}", title=f"More {n}", url=f"https://example.org/{n}",
                            status=ResourceStatus.published)  # fmt: skip
        db.session.add(resource)
        db.session.flush()
        db.session.add(EventResource(event_id=packed_event.id, resource_id=resource.id))
        for item_id in item_ids:
            db.session.add(AgendaItemResource(agenda_item_id=item_id, resource_id=resource.id))
    db.session.commit()
    assert queries() == few


# --- the demo library ----------------------------------------------------------------------------


def load(app):
    load_demo(app)
    db.session.commit()


@pytest.mark.slow  # loads the demo
def test_the_demo_library_holds_the_articles_five_links_as_published_with_notes(app):
    load(app)
    article = {entry.slug: entry for entry in demo_resources.ARTICLE}
    assert len(article) == 5
    found = {
        r.slug: r for r in db.session.scalars(db.select(Resource).where(Resource.slug.in_(article)))
    }
    assert set(found) == set(article)
    urls = {r.url for r in found.values()}
    assert urls == {
        "http://www.cyberstreetwise.com/cyberessentials/",
        "http://www.gov.uk/government/publications/",
        "http://www.nationalarchives.gov.uk/sme/",
        "http://www.cesg.gov.uk/",
        "https://vouchers.innovateuk.org/cyber-security",
    }
    for resource in found.values():
        ended = resource.slug == "innovate-uk-cyber-security-vouchers"  # nothing replaces it
        assert resource.status == (ResourceStatus.retired if ended else ResourceStatus.published)
        assert resource.staff_note, resource.slug
        assert services.web_address_problem(resource.url) is None
    assert "National Cyber Security Centre" in found["cesg-cpni-incident-response"].staff_note
    assert "2016" in found["cesg-cpni-incident-response"].staff_note
    assert "www.cpni.gov.uk" in found["cesg-cpni-incident-response"].description
    successors = {
        slug: r.superseded_by.url if r.superseded_by else None for slug, r in found.items()
    }
    assert successors == {
        "cyber-streetwise-cyber-essentials": "https://www.ncsc.gov.uk/cyberessentials/overview",
        "gov-uk-cyber-security-publications": "https://www.ncsc.gov.uk/collection/small-business-guide",
        "national-archives-sme-courses": "https://www.ncsc.gov.uk/collection/small-business-guide",
        "cesg-cpni-incident-response": "https://www.ncsc.gov.uk/",
        "innovate-uk-cyber-security-vouchers": None,  # ended, with nothing like it
    }


@pytest.mark.slow  # loads the demo
def test_the_demo_guide_is_the_five_step_plan_beside_the_talk_it_came_from(app, client):
    load(app)
    guide = db.session.scalar(db.select(Resource).where(Resource.kind == ResourceKind.guide))
    for step in ("Audit", "Plan", "Execute", "Monitor", "Repeat"):
        assert f"**{step}.**" in guide.body
    for event in db.session.scalars(db.select(Event)):
        talk = next(i for i in event.agenda_items if i.title.startswith("Cyber Essentials"))
        shown = attachments.event_resources(event)
        assert [s.resource.slug for s in shown.for_item(talk.id)][0] == guide.slug
        page = client.get(f"/events/{event.slug}").text
        item_html = page[page.index(f'id="item-{talk.id}"') :]
        item_html = item_html[: item_html.index('<li class="agenda-item')]
        assert "Five steps to a business security plan" in item_html


def event_wide(event: Event) -> list[tuple[str, list[str]]]:
    return [
        (s.resource.slug, [old.slug for old in s.replaces])
        for s in attachments.event_resources(event).event_wide
    ]


@pytest.mark.slow  # loads the demo
def test_the_upcoming_demo_edition_hands_out_todays_resources(app, client):
    load(app)
    upcoming = db.session.scalar(db.select(Event).where(Event.slug != seminar.PAST_EDITION_SLUG))
    assert event_wide(upcoming) == [
        ("ncsc-small-business-guide", []),
        ("cyber-essentials", []),
        ("get-safe-online", []),
        ("action-fraud", []),
        ("five-step-security-plan", []),
    ]
    page = client.get(f"/events/{upcoming.slug}").text
    for entry in demo_resources.ARTICLE:  # no 2016 address, and not the ended vouchers
        assert entry.url not in page
    assert "Replaces:" not in page and "vouchers" not in page.lower()


@pytest.mark.slow  # loads the demo
def test_the_2016_edition_keeps_the_articles_list_pointing_to_what_replaced_each(app, client):
    load(app)
    past = db.session.scalar(db.select(Event).where(Event.slug == seminar.PAST_EDITION_SLUG))
    assert event_wide(past) == [
        ("cyber-essentials", ["cyber-streetwise-cyber-essentials"]),
        ("ncsc-small-business-guide",
         ["gov-uk-cyber-security-publications", "national-archives-sme-courses"]),
        ("ncsc", ["cesg-cpni-incident-response"]),
        ("innovate-uk-cyber-security-vouchers", []),  # ended: kept in the record, as such
    ]  # fmt: skip
    page = client.get(f"/events/{seminar.PAST_EDITION_SLUG}").text
    for entry in demo_resources.ARTICLE:
        assert f'href="{entry.url}"' not in page  # named, with its page; never a dead link
        assert f'href="/resources/{entry.slug}"' in page
    assert "No longer available" in page and "This voucher scheme has ended" in page
    assert "In October 2016 CESG" in page  # what staff know now, beside the old one


@pytest.mark.slow  # loads the demo
def test_loading_the_demo_twice_adds_no_resources_and_keeps_staff_choices(app):
    load(app)
    counts = {
        model.__name__: db.session.scalar(db.select(db.func.count(model.id)))
        for model in (Resource, EventResource, AgendaItemResource)
    }
    assert counts["Resource"] == 11
    guide = db.session.scalar(db.select(Resource).where(Resource.kind == ResourceKind.guide))
    guide.title = "Edited by staff"
    db.session.commit()
    load(app)
    assert {
        model.__name__: db.session.scalar(db.select(db.func.count(model.id)))
        for model in (Resource, EventResource, AgendaItemResource)
    } == counts
    db.session.expire_all()
    assert guide.title == "Edited by staff"


@pytest.mark.slow  # loads the demo
def test_the_demo_library_page_and_a_demo_pack_work(app, client):
    load(app)
    library = client.get("/resources")
    assert library.status_code == 200
    # Today's six, each naming the 2016 links it replaced; the ended vouchers are retired.
    assert "6 resources." in library.text
    assert library.text.count("Replaces:</strong>") == 3
    assert "www.cyberstreetwise.com" not in library.text
    pack = client.get(f"/events/{seminar.PAST_EDITION_SLUG}/resources")
    assert pack.status_code == 200
    assert "Cyber Essentials (Cyber Streetwise)" in pack.text
    assert "www.cyberstreetwise.com/cyberessentials/" not in pack.text
    download = client.get(f"/events/{seminar.PAST_EDITION_SLUG}/resources.html")
    assert download.status_code == 200
    assert "Five steps to a business security plan" in download.text


# --- a forged Host -------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["resources", "resources.html"])
def test_a_forged_host_never_reaches_the_pack_or_anyone_served_it_after(
    app, client, packed_event, suffix
):
    """The pack writes its addresses out in full, at the public base URL: a request's Host (or,
    behind a proxy, X-Forwarded-Host, which becomes it) is not in the page, which the cache keeps
    for everyone."""
    base = app.config["BASE_URL"]
    forged = client.get(f"/events/cyber/{suffix}", headers={"Host": "evil.example"})
    later = app.test_client().get(f"/events/cyber/{suffix}")
    for answer in (forged, later):
        assert answer.status_code == 200
        assert "evil" not in answer.text
        assert f"{base}/events/cyber/resources" in answer.text  # the pack's own address
