"""The resource library: staff curate links and guides (create, edit, publish, retire, replace),
attach them to events and talks in order; the public searches the library, filters it, reads each
resource's page and sees an event's resources beside its talks."""

from __future__ import annotations

import re

import pytest

from chamber.events.models import EventStatus
from chamber.extensions import db
from chamber.resources import attachments, services
from chamber.resources.models import (
    AgendaItemResource,
    EventResource,
    Resource,
    ResourceKind,
    ResourceStatus,
)
from tests.factories import acting_staff, at
from tests.support import count_queries, csrf_token, post_form
from tests.test_security_headers import live_markup

SUMMARY = "There is a problem"
LINK_FORM = {
    "title": "Small Business Guide",
    "url": "https://www.ncsc.gov.uk/collection/small-business-guide",
    "publisher": "NCSC",
    "description": "Five low-cost steps to protect a small business.",
    "category": "Cyber security",
    "tags": "Backups, PASSWORDS,  phishing , backups",
    "audience": ["micro", "small"],
    "staff_note": "",
    "slug": "",
}
GUIDE_FORM = {
    "title": "Five steps to a security plan",
    "body": "1. **Audit**\n2. **Plan**\n3. **Execute**\n4. **Monitor**\n5. **Repeat**",
    "publisher": "Hertfordshire Chamber of Commerce",
    "description": "Audit, Plan, Execute, Monitor, Repeat.",
    "category": "Planning",
    "tags": "security plan",
    "staff_note": "",
    "slug": "",
}


# --- helpers -------------------------------------------------------------------------------------


@pytest.fixture
def make_resource(app):
    counter = iter(range(1, 10_000))

    def make(
        title: str | None = None,
        *,
        status: ResourceStatus = ResourceStatus.published,
        kind: ResourceKind = ResourceKind.link,
        **fields,
    ) -> Resource:
        n = next(counter)
        values = dict(
            slug=f"resource-{n}",
            title=title or f"Resource {n}",
            kind=kind,
            status=status,
            url=f"https://example.com/{n}" if kind == ResourceKind.link else None,
            body="A **guide**." if kind == ResourceKind.guide else "",
        )
        values.update(fields)
        resource = Resource(**values)
        db.session.add(resource)
        db.session.commit()
        return resource

    return make


def create(client, kind: str = "link", **changes):
    form = LINK_FORM if kind == "link" else GUIDE_FORM
    return post_form(client, f"/staff/resources/new/{kind}", {**form, **changes})


def all_resources() -> list[Resource]:
    return list(db.session.scalars(db.select(Resource).order_by(Resource.id)))


def only_resource() -> Resource:
    return db.session.scalars(db.select(Resource)).one()


def staff_post(client, path: str, data: dict | None = None, form_page: str = "/staff/resources/"):
    """POST a staff action with the CSRF token from `form_page`, as the button on it would."""
    return post_form(client, path, data or {}, token_from=form_page)


def library_titles(client, **query) -> list[str]:
    response = client.get("/resources", query_string=query)
    assert response.status_code == 200
    return re.findall(
        r'<h2 class="card-title"><a href="/resources/[^"]+">([^<]+)</a>', response.text
    )


# --- creating and editing ------------------------------------------------------------------------


def test_staff_add_a_link_as_a_draft_with_tidy_tags_and_an_audience(organiser_client, client):
    response = create(organiser_client)
    assert response.status_code == 302
    resource = only_resource()
    assert response.headers["Location"] == f"/staff/resources/{resource.id}"
    assert (resource.kind, resource.status) == (ResourceKind.link, ResourceStatus.draft)
    assert resource.slug == "small-business-guide"
    assert resource.url == LINK_FORM["url"]
    assert resource.tags == ",backups,passwords,phishing,"
    assert resource.audience == ",micro,small,"
    page = organiser_client.get(response.headers["Location"]).text
    assert "Added “Small Business Guide” as a draft" in page
    assert client.get("/resources/small-business-guide").status_code == 404  # a draft
    assert library_titles(client) == []


def test_staff_write_a_guide_in_markdown(organiser_client):
    response = create(organiser_client, "guide")
    assert response.status_code == 302
    guide = only_resource()
    assert (guide.kind, guide.url) == (ResourceKind.guide, None)
    assert guide.body.startswith("1. **Audit**")
    page = organiser_client.get(f"/staff/resources/{guide.id}").text
    assert "<strong>Audit</strong>" in page


def test_every_size_ticked_means_every_business(organiser_client):
    create(organiser_client, audience=["micro", "small", "medium", "large"])
    assert only_resource().audience == ""


def test_editing_keeps_the_slug_and_shows_the_tags_as_typed(organiser_client, make_resource):
    resource = make_resource("Old title", tags=",phishing,passwords,", audience=",micro,")
    path = f"/staff/resources/{resource.id}/edit"
    form = organiser_client.get(path).text
    assert 'value="phishing, passwords"' in form
    assert re.search(r'<input[^>]*checked[^>]*value="micro"|value="micro"[^>]*checked', form)
    response = post_form(organiser_client, path, {**LINK_FORM, "title": "New title"})
    assert response.status_code == 302
    db.session.expire_all()
    assert (resource.title, resource.slug) == ("New title", "resource-1")


def test_a_chosen_slug_must_be_free(organiser_client, make_resource):
    make_resource(slug="cyber-essentials")
    response = create(organiser_client, slug="cyber-essentials")
    assert response.status_code == 400
    assert "Another resource already uses this address." in response.text
    assert len(all_resources()) == 1


def test_the_same_address_twice_is_refused_naming_the_other(organiser_client, make_resource):
    make_resource("The NCSC guide", url=LINK_FORM["url"])
    response = create(organiser_client)
    assert response.status_code == 400
    assert "“The NCSC guide” already links to this address" in response.text
    assert len(all_resources()) == 1


# --- bad input -----------------------------------------------------------------------------------

BAD_LINKS = [
    ({"title": ""}, "Enter the resource&#39;s title."),
    ({"title": "x" * 201}, "Title must be 200 characters or fewer."),
    ({"url": ""}, "Enter the link&#39;s web address."),
    ({"url": "javascript:alert(1)"}, "javascript: addresses are not allowed"),
    ({"url": "JaVaScRiPt:alert(document.cookie)"}, "javascript: addresses are not allowed"),
    ({"url": "data:text/html;base64,PHNjcmlwdD4="}, "data: addresses are not allowed"),
    ({"url": "vbscript:msgbox(1)"}, "vbscript: addresses are not allowed"),
    ({"url": "file:///etc/passwd"}, "file: addresses are not allowed"),
    ({"url": "ftp://example.com/file"}, "ftp: addresses are not allowed"),
    ({"url": "www.ncsc.gov.uk"}, "Enter the full web address, starting with https://"),
    ({"url": "//www.ncsc.gov.uk/"}, "Enter the full web address, starting with https://"),
    ({"url": "https://"}, "Enter the full web address, with the site&#39;s name"),
    ({"url": "https://user:secret@example.com/"}, "cannot contain a user name or password"),
    ({"url": "https://example.com/a b"}, "cannot contain spaces"),
    ({"url": "https://example.com:port/"}, "Enter a real web address"),
    ({"url": "https://example.com/" + "a" * 2000}, "Web address must be 2000 characters or fewer."),
    ({"publisher": "N" * 121}, "Publisher must be 120 characters or fewer."),
    ({"description": "d" * 2001}, "Description must be 2000 characters or fewer."),
    ({"category": "c" * 81}, "Category must be 80 characters or fewer."),
    ({"tags": "t" * 41}, "Each tag must be 40 characters or fewer"),
    ({"tags": ",".join(f"tag{n:03d}" for n in range(80))}, "Too many tags"),
    ({"staff_note": "n" * 2001}, "Note from the Chamber must be 2000 characters or fewer."),
    ({"slug": "Not A Slug!"}, "can only use lower-case letters"),
    ({"slug": "s" * 81}, "Address in the library must be 80 characters or fewer."),
    ({"title": "<script>alert(1)</script>"}, "Title is plain text: remove the HTML tag"),
    ({"description": 'Hi <img src=x onerror="alert(1)">'}, "Description is plain text"),
    ({"publisher": "<b>NCSC</b>"}, "Publisher is plain text"),
    ({"title": "Bell\x07"}, "Title contains a character that is not allowed."),
    ({"audience": ["huge"]}, "Choose business sizes from the list."),
]


@pytest.mark.parametrize(("changes", "message"), BAD_LINKS, ids=lambda v: repr(v)[:40])
def test_a_bad_link_comes_back_with_the_reason_and_stores_nothing(
    organiser_client, changes, message
):
    response = create(organiser_client, **changes)
    assert response.status_code == 400
    assert SUMMARY in response.text
    assert message in response.text
    assert all_resources() == []
    assert live_markup(response.text) == []


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"body": ""}, "Write the guide&#39;s text."),
        ({"body": "   \n  "}, "Write the guide&#39;s text."),
        ({"body": "b" * 20001}, "Guide must be 20000 characters or fewer."),
        ({"title": ""}, "Enter the resource&#39;s title."),
    ],
)
def test_a_bad_guide_comes_back_with_the_reason(organiser_client, changes, message):
    response = create(organiser_client, "guide", **changes)
    assert response.status_code == 400
    assert message in response.text
    assert all_resources() == []


def test_a_bad_edit_changes_nothing(organiser_client, make_resource):
    resource = make_resource("Keep me", url="https://www.ncsc.gov.uk/")
    response = post_form(
        organiser_client,
        f"/staff/resources/{resource.id}/edit",
        {**LINK_FORM, "title": "Changed", "url": "javascript:alert(1)"},
    )
    assert response.status_code == 400
    db.session.expire_all()
    assert (resource.title, resource.url) == ("Keep me", "https://www.ncsc.gov.uk/")


@pytest.mark.parametrize(
    "title",
    ["'; DROP TABLE resource; --", "Zoë O'Brien's guide 李", "Cyber safety 🔐🎉", "a < b & c > d"],
)
def test_unusual_but_harmless_text_is_stored_as_typed_and_shown_escaped(
    organiser_client, client, title
):
    response = create(organiser_client, title=title, description=title, tags=title)
    assert response.status_code == 302, response.text
    resource = only_resource()
    assert resource.title == title
    staff_post(organiser_client, f"/staff/resources/{resource.id}/publish")
    for page in (client.get(f"/resources/{resource.slug}"), client.get("/resources")):
        assert page.status_code == 200
        assert live_markup(page.text) == []
        assert title not in page.text or "<" not in title
    assert db.session.scalar(db.select(db.func.count(Resource.id))) == 1  # the table survived


def test_a_title_with_no_latin_letters_gets_a_plain_slug(organiser_client):
    create(organiser_client, title="网络安全")
    assert only_resource().slug == "resource"


def test_guide_markdown_is_sanitised(organiser_client, client):
    nasty = "\n\n".join([
        "<script>alert(1)</script>",
        "[x](javascript:alert(1))",
        '<a href="javascript:alert(1)" onclick="alert(1)">click</a>',
        "[ok](https://www.ncsc.gov.uk/)",
    ])  # fmt: skip
    create(organiser_client, "guide", body=nasty)
    guide = only_resource()
    staff_post(organiser_client, f"/staff/resources/{guide.id}/publish")
    page = client.get(f"/resources/{guide.slug}").text
    assert live_markup(page) == []
    assert '<a href="javascript' not in page.lower() and "<script>alert" not in page
    assert '<a href="https://www.ncsc.gov.uk/" rel="noopener noreferrer nofollow">ok</a>' in page


def test_a_post_without_or_with_a_wrong_csrf_token_is_refused_and_stores_nothing(
    organiser_client, make_resource, make_event
):
    resource = make_resource(status=ResourceStatus.draft)
    event = make_event()
    targets = [
        ("/staff/resources/new/link", LINK_FORM),
        (f"/staff/resources/{resource.id}/edit", {**LINK_FORM, "title": "Hijacked"}),
        (f"/staff/resources/{resource.id}/publish", {}),
        (f"/staff/resources/{resource.id}/supersede", {"successor": "0"}),
        (
            f"/staff/resources/events/{event.id}/attach",
            {"resource": resource.id, "target": "event"},
        ),
    ]
    for token in (None, "not-a-token"):
        for path, data in targets:
            sent = dict(data) if token is None else {**data, "csrf_token": token}
            response = organiser_client.post(path, data=sent)
            assert response.status_code == 400, path
            assert "The form could not be sent" in response.text
    db.session.expire_all()
    assert [(r.title, r.status) for r in all_resources()] == [
        (resource.title, ResourceStatus.draft)
    ]
    assert db.session.scalars(db.select(EventResource)).all() == []


@pytest.mark.parametrize(
    "path",
    [
        "/staff/resources/999999",
        "/staff/resources/999999/edit",
        "/staff/resources/events/999999",
        "/staff/resources/2147483648",
        "/staff/resources/abc",
        "/staff/resources/new/video",
        "/resources/no-such-thing",
        "/resources/%00",
        "/events/no-such-event/resources",
        "/events/no-such-event/resources.html",
        "/events/a%00b/resources",
    ],
)
def test_unknown_things_are_a_plain_404(organiser_client, path):
    response = organiser_client.get(path)
    assert response.status_code == 404
    assert "Page not found" in response.text


def test_actions_on_unknown_or_unattached_things_are_404_and_change_nothing(
    organiser_client, make_resource, make_event, make_item
):
    resource = make_resource()
    event = make_event()
    item = make_item(event)
    for path in [
        "/staff/resources/999999/publish",
        "/staff/resources/999999/supersede",
        f"/staff/resources/events/{event.id}/{resource.id}/remove",
        f"/staff/resources/events/{event.id}/{resource.id}/later",
        f"/staff/resources/items/{item.id}/{resource.id}/remove",
        f"/staff/resources/items/{item.id}/{resource.id}/earlier",
        f"/staff/resources/events/999999/{resource.id}/remove",
        f"/staff/resources/items/999999/{resource.id}/remove",
        "/staff/resources/events/999999/attach",
    ]:
        assert staff_post(organiser_client, path).status_code == 404, path


def test_a_status_change_by_get_is_not_allowed(organiser_client, make_resource):
    resource = make_resource(status=ResourceStatus.draft)
    assert organiser_client.get(f"/staff/resources/{resource.id}/publish").status_code == 405
    db.session.expire_all()
    assert resource.status == ResourceStatus.draft


# --- publishing, retiring, replacing -------------------------------------------------------------


def test_publish_unpublish_retire_and_restore(organiser_client, client, make_resource):
    resource = make_resource("Cyber Essentials", status=ResourceStatus.draft)
    base = f"/staff/resources/{resource.id}"
    public = f"/resources/{resource.slug}"

    staff_post(organiser_client, f"{base}/publish")
    db.session.expire_all()
    assert resource.status == ResourceStatus.published and resource.published_at is not None
    assert client.get(public).status_code == 200
    assert library_titles(client) == ["Cyber Essentials"]

    staff_post(organiser_client, f"{base}/unpublish")
    assert client.get(public).status_code == 404
    assert library_titles(client) == []

    staff_post(organiser_client, f"{base}/retire")
    db.session.expire_all()
    assert resource.status == ResourceStatus.retired and resource.retired_at is not None
    page = client.get(public)
    assert page.status_code == 200
    assert "This resource has been retired." in page.text
    assert library_titles(client) == []

    response = staff_post(organiser_client, f"{base}/publish")
    assert "Published “Cyber Essentials”" in organiser_client.get(response.headers["Location"]).text
    db.session.expire_all()
    assert (resource.status, resource.retired_at) == (ResourceStatus.published, None)


def test_a_retired_resource_names_its_successor(client, make_resource):
    new = make_resource("National Cyber Security Centre", slug="ncsc")
    make_resource("CESG", slug="cesg", status=ResourceStatus.retired, superseded_by_id=new.id)
    page = client.get("/resources/cesg").text
    assert "This resource has been retired." in page
    assert 'use <a href="/resources/ncsc">National Cyber Security Centre</a> instead' in page


def test_staff_mark_a_resource_replaced_and_the_public_is_pointed_on(
    organiser_client, client, make_resource
):
    old = make_resource("Cyber Streetwise", slug="streetwise")
    new = make_resource("Cyber Essentials", slug="cyber-essentials", publisher="NCSC")
    path = f"/staff/resources/{old.id}/supersede"
    response = post_form(
        organiser_client, path, {"successor": new.id}, token_from=f"/staff/resources/{old.id}"
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert old.superseded_by_id == new.id

    page = client.get("/resources/streetwise").text
    assert "This has been replaced." in page
    assert '<a href="/resources/cyber-essentials">Cyber Essentials</a> (NCSC) instead' in page
    # The library lists the successor once, naming what it replaced (whose page explains).
    library = client.get("/resources").text
    assert library_titles(client) == ["Cyber Essentials"]
    assert 'Replaces:</strong> <a href="/resources/streetwise">Cyber Streetwise</a>' in library
    assert library_titles(client, q="streetwise") == ["Cyber Essentials"]  # found by old words
    successor_page = client.get("/resources/cyber-essentials").text
    assert '<dt>Replaces</dt><dd><ul class="plain-list"><li><a href="/resources/streetwise">' in (
        successor_page
    )

    post_form(organiser_client, path, {"successor": "0"}, token_from=f"/staff/resources/{old.id}")
    db.session.expire_all()
    assert old.superseded_by_id is None


def test_a_resource_cannot_replace_itself(organiser_client, make_resource):
    resource = make_resource()
    response = post_form(
        organiser_client,
        f"/staff/resources/{resource.id}/supersede",
        {"successor": resource.id},
        token_from=f"/staff/resources/{resource.id}",
    )
    assert response.status_code == 400
    assert "Choose a resource from the list." in response.text  # itself is never offered
    with pytest.raises(services.ResourceError, match="cannot replace itself"):
        services.supersede(resource, resource, by=acting_staff())


def test_replacements_cannot_go_round_in_a_circle(organiser_client, make_resource):
    a, b, c = make_resource("A"), make_resource("B"), make_resource("C")
    services.supersede(b, c, by=acting_staff())
    services.supersede(c, a, by=acting_staff())
    db.session.commit()
    response = post_form(
        organiser_client,
        f"/staff/resources/{a.id}/supersede",
        {"successor": b.id},
        token_from=f"/staff/resources/{a.id}",
    )
    assert response.status_code == 400
    assert "that would go round in a circle" in response.text
    db.session.expire_all()
    assert a.superseded_by_id is None


@pytest.mark.parametrize("value", ["", "abc", "999999", "-1", "1.5", "<script>"])
def test_a_successor_not_in_the_list_is_refused_plainly(organiser_client, make_resource, value):
    resource = make_resource()
    make_resource("A draft", status=ResourceStatus.draft)
    response = post_form(
        organiser_client,
        f"/staff/resources/{resource.id}/supersede",
        {"successor": value},
        token_from=f"/staff/resources/{resource.id}",
    )
    assert response.status_code == 400
    assert "Choose a resource from the list." in response.text
    assert live_markup(response.text) == []
    db.session.expire_all()
    assert resource.superseded_by_id is None


def test_only_a_published_resource_can_be_a_successor(make_resource):
    with pytest.raises(services.ResourceError, match="is not published"):
        services.supersede(
            make_resource(), make_resource(status=ResourceStatus.draft), by=acting_staff()
        )


def test_the_staff_list_counts_and_searches(organiser_client, make_resource):
    make_resource("Published one")
    make_resource("Draft one", status=ResourceStatus.draft)
    make_resource("Retired one", status=ResourceStatus.retired)
    page = organiser_client.get("/staff/resources/").text
    for count, label in [(3, "All"), (1, "Published"), (1, "Drafts"), (1, "Retired")]:
        assert f"<strong>{count}</strong> {label}" in page
    drafts = organiser_client.get("/staff/resources/?show=draft").text
    assert "Draft one" in drafts and "Published one" not in drafts
    found = organiser_client.get("/staff/resources/?q=retired").text
    assert "Retired one" in found and "Draft one" not in found
    odd = organiser_client.get("/staff/resources/?show=<script>&q=%00'--&page=abc")
    assert odd.status_code == 200 and live_markup(odd.text) == []


# --- search and filters --------------------------------------------------------------------------


@pytest.fixture
def library(make_resource):
    make_resource(
        "Cyber Essentials", publisher="NCSC", category="Cyber security",
        description="The government-backed baseline.", tags=",certification,",
    )  # fmt: skip
    make_resource(
        "Small Business Guide", publisher="NCSC", category="Cyber security",
        description="Backups, malware, phones, passwords, phishing.", audience=",micro,small,",
    )  # fmt: skip
    make_resource(
        "Action Fraud", publisher="City of London Police", category="Fraud",
        description="Report fraud and cyber crime.", tags=",report,police,", audience=",large,",
    )  # fmt: skip
    make_resource(
        "Five steps to a security plan", kind=ResourceKind.guide, publisher="Herts Chamber",
        category="Planning", description="Audit, Plan, Execute, Monitor, Repeat.",
        tags=",security plan,",
    )  # fmt: skip
    make_resource("Secret draft", status=ResourceStatus.draft, publisher="NCSC")
    make_resource("Old retired", status=ResourceStatus.retired, publisher="NCSC")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, ["Action Fraud", "Cyber Essentials", "Five steps to a security plan",
              "Small Business Guide"]),
        ({"q": "essentials"}, ["Cyber Essentials"]),  # title
        ({"q": "BASELINE"}, ["Cyber Essentials"]),  # description, any case
        ({"q": "ncsc"}, ["Cyber Essentials", "Small Business Guide"]),  # publisher
        ({"q": "police"}, ["Action Fraud"]),  # a tag (and the publisher)
        ({"q": "security plan"}, ["Five steps to a security plan"]),  # every word must match
        ({"q": "cyber report"}, ["Action Fraud"]),
        ({"q": "nothing-like-this"}, []),
        ({"q": "%"}, []),  # wildcards are literal
        ({"q": "_"}, []),
        ({"q": "'; DROP TABLE resource; --"}, []),
        ({"category": "Cyber security"}, ["Cyber Essentials", "Small Business Guide"]),
        ({"category": "Fraud"}, ["Action Fraud"]),
        ({"publisher": "NCSC"}, ["Cyber Essentials", "Small Business Guide"]),
        ({"publisher": "Herts Chamber"}, ["Five steps to a security plan"]),
        # No audience means every size; a size filter keeps those and the ones for that size.
        ({"audience": "micro"}, ["Cyber Essentials", "Five steps to a security plan",
                                 "Small Business Guide"]),
        ({"audience": "large"}, ["Action Fraud", "Cyber Essentials",
                                 "Five steps to a security plan"]),
        ({"audience": "enormous"}, ["Action Fraud", "Cyber Essentials",
                                    "Five steps to a security plan", "Small Business Guide"]),
        ({"q": "guide", "publisher": "NCSC", "audience": "small"}, ["Small Business Guide"]),
        ({"category": "<script>", "publisher": "%00"}, []),
    ],
)  # fmt: skip
def test_search_and_filters_find_the_right_published_resources(client, library, query, expected):
    assert library_titles(client, **query) == expected


def test_the_filter_menus_offer_what_is_published(client, library):
    page = client.get("/resources").text
    assert '<option value="Fraud">Fraud</option>' in page
    assert '<option value="City of London Police">City of London Police</option>' in page
    assert '<option value="micro">Micro (1 to 9 employees)</option>' in page
    chosen = client.get("/resources?publisher=NCSC").text
    assert '<option value="NCSC" selected>NCSC</option>' in chosen
    assert "2 resources found." in chosen


def test_the_library_is_paginated_keeping_the_search(client, make_resource):
    for n in range(25):
        make_resource(f"Cyber tip {n:02d}", category="Tips")
    first = client.get("/resources?q=tip&category=Tips")
    assert first.text.count('class="card"') == 20
    assert "25 resources found, showing 1 to 20." in first.text
    assert 'href="/resources?page=2&amp;q=tip&amp;category=Tips"' in first.text
    second = client.get("/resources?q=tip&category=Tips&page=2")
    assert second.text.count('class="card"') == 5
    assert "Cyber tip 24" in second.text
    for page in ("abc", "-1", "99999", "<script>"):
        response = client.get("/resources", query_string={"page": page})
        assert response.status_code == 200 and live_markup(response.text) == []


def test_the_librarys_queries_do_not_grow_with_its_size(app, client, make_resource):
    def queries_for_library() -> int:
        client.get("/resources")  # warm up
        with count_queries() as statements:
            response = client.get("/resources?q=cyber")
        assert response.status_code == 200
        return len(statements)

    successor = make_resource("Cyber successor")
    make_resource("Cyber old", superseded_by_id=successor.id, tags=",a,b,")
    few = queries_for_library()
    for n in range(18):
        new = make_resource(f"Cyber new {n}", category=f"C{n}", publisher=f"P{n}")
        make_resource(f"Cyber old {n}", superseded_by_id=new.id, tags=",x,")
    assert queries_for_library() == few


def test_a_draft_resource_page_is_a_preview_for_staff_only(
    client, checkin_client, organiser_client, make_resource
):
    draft = make_resource("Coming soon", status=ResourceStatus.draft)
    assert client.get(f"/resources/{draft.slug}").status_code == 404
    assert checkin_client.get(f"/resources/{draft.slug}").status_code == 404
    preview = organiser_client.get(f"/resources/{draft.slug}")
    assert preview.status_code == 200
    assert "Only staff can see this page" in preview.text


def test_a_resource_page_shows_its_details_and_where_it_was_shared(
    client, make_resource, make_event
):
    resource = make_resource(
        "Cyber Essentials", url="https://www.ncsc.gov.uk/cyberessentials/overview",
        publisher="NCSC", category="Cyber security", tags=",certification,",
        audience=",micro,small,", staff_note="Still the government-backed baseline.",
    )  # fmt: skip
    event = make_event(title="Cyber morning")
    db.session.add(EventResource(event_id=event.id, resource_id=resource.id))
    db.session.add(EventResource(event_id=make_event(title="Hidden", status=EventStatus.draft).id,
                                 resource_id=resource.id))  # fmt: skip
    db.session.commit()
    page = client.get(f"/resources/{resource.slug}").text
    assert 'href="https://www.ncsc.gov.uk/cyberessentials/overview"' in page
    assert "Note from the Chamber:</strong> Still the government-backed baseline." in page
    assert "Micro, Small" in page
    assert "Cyber morning" in page and "Hidden" not in page


# --- on events and talks -------------------------------------------------------------------------


def test_staff_attach_resources_to_an_event_and_a_talk_and_put_them_in_order(
    organiser_client, client, make_event, make_item, make_resource
):
    event = make_event()
    talk = make_item(event, title="Cyber Essentials and your plan", minutes_in=30)
    first, second, third = (make_resource(t) for t in ("First", "Second", "Third"))
    guide = make_resource("The plan", kind=ResourceKind.guide)
    page_path = f"/staff/resources/events/{event.id}"
    attach = f"{page_path}/attach"
    for resource in (first, second, third):
        response = post_form(
            organiser_client, attach, {"resource": resource.id, "target": "event"},
            token_from=page_path,
        )  # fmt: skip
        assert response.status_code == 302
    post_form(organiser_client, attach, {"resource": guide.id, "target": f"item-{talk.id}"},
              token_from=page_path)  # fmt: skip
    post_form(organiser_client, attach, {"resource": first.id, "target": f"item-{talk.id}"},
              token_from=page_path)  # fmt: skip

    def event_order():
        db.session.expire_all()
        return [shown.resource.title for shown in attachments.event_resources(event).event_wide]

    assert event_order() == ["First", "Second", "Third"]
    staff_post(organiser_client, f"{page_path}/{third.id}/earlier", form_page=page_path)
    assert event_order() == ["First", "Third", "Second"]
    staff_post(organiser_client, f"{page_path}/{first.id}/later", form_page=page_path)
    assert event_order() == ["Third", "First", "Second"]
    staff_post(organiser_client, f"{page_path}/{third.id}/earlier", form_page=page_path)
    assert event_order() == ["Third", "First", "Second"]  # already first: nothing moves
    staff_post(organiser_client, f"{page_path}/{second.id}/remove", form_page=page_path)
    assert event_order() == ["Third", "First"]

    item_base = f"/staff/resources/items/{talk.id}"
    staff_post(organiser_client, f"{item_base}/{first.id}/earlier", form_page=page_path)
    db.session.expire_all()
    assert [s.resource.title for s in attachments.event_resources(event).for_item(talk.id)] == [
        "First", "The plan"
    ]  # fmt: skip

    staff_page = organiser_client.get(page_path).text
    assert "Move up" in staff_page and "Remove" in staff_page
    event_wide = staff_page[staff_page.index('id="event-wide"') :]
    assert event_wide.index("Third") < event_wide.index("First")

    public = client.get(f"/events/{event.slug}").text
    agenda_item = public[public.index(f'id="item-{talk.id}"') :]
    agenda_item = agenda_item[: agenda_item.index("</section>")]  # the event's only item
    assert "Resources for this talk" in agenda_item
    assert agenda_item.index("First") < agenda_item.index("The plan")
    resources_section = public[public.index('id="resources"') :]
    assert resources_section.index("Third") < resources_section.index("First")
    assert "Second" not in public


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"resource": "0", "target": "event"}, "Choose a resource to add."),
        ({"target": "event"}, "Choose a resource to add."),
        ({"resource": "abc", "target": "event"}, "Choose a resource from the list."),
        ({"resource": "999999", "target": "event"}, "Choose a resource from the list."),
        ({"resource": "RETIRED", "target": "event"}, "Choose a resource from the list."),
        ({"resource": "OK", "target": "item-999999"}, "Choose the whole event or one of its"),
        ({"resource": "OK", "target": "OTHER-ITEM"}, "Choose the whole event or one of its"),
        ({"resource": "OK", "target": ""}, "Choose the whole event or one of its"),
        ({"resource": "ATTACHED", "target": "event"}, "is already in this event&#39;s resources"),
    ],
)
def test_attaching_something_wrong_is_refused_with_the_reason(
    organiser_client, make_event, make_item, make_resource, data, message
):
    event = make_event()
    other_item = make_item(make_event())
    ok = make_resource("Fine")
    attached = make_resource("Already there")
    retired = make_resource("Gone", status=ResourceStatus.retired)
    db.session.add(EventResource(event_id=event.id, resource_id=attached.id))
    db.session.commit()
    values = {"OK": ok.id, "RETIRED": retired.id, "ATTACHED": attached.id,
              "OTHER-ITEM": f"item-{other_item.id}"}  # fmt: skip
    data = {key: values.get(value, value) for key, value in data.items()}
    path = f"/staff/resources/events/{event.id}"
    response = post_form(organiser_client, f"{path}/attach", data, token_from=path)
    assert response.status_code == 400
    assert SUMMARY in response.text and message in response.text
    assert db.session.scalar(db.select(db.func.count(EventResource.id))) == 1
    assert db.session.scalar(db.select(db.func.count(AgendaItemResource.id))) == 0


@pytest.mark.parametrize("target", ["event", "talk"])
def test_a_double_click_on_attach_is_told_it_is_already_there(
    organiser_client, make_event, make_item, make_resource, monkeypatch, target
):
    """The other click's row lands after this request read the list: the database refuses the
    duplicate and staff get the same message as when the list already had it, not a 500."""
    event = make_event()
    talk = make_item(event)
    resource = make_resource("Small Business Guide")
    if target == "event":
        reader, table, field = "_event_links", EventResource.__table__, "event"
        values, where = {"event_id": event.id}, "this event&#39;s resources"
    else:
        reader, table, field = "_item_links", AgendaItemResource.__table__, f"item-{talk.id}"
        values, where = {"agenda_item_id": talk.id}, "the resources for “A talk”"
    read_list = getattr(attachments, reader)

    def read_then_the_other_click_lands(owner):
        links = read_list(owner)
        with db.engine.begin() as other_connection:  # the other request, committed
            other_connection.execute(
                table.insert().values(**values, resource_id=resource.id, position=0)
            )
        return links

    monkeypatch.setattr(attachments, reader, read_then_the_other_click_lands)
    path = f"/staff/resources/events/{event.id}"
    response = post_form(
        organiser_client, f"{path}/attach", {"resource": resource.id, "target": field},
        token_from=path,
    )  # fmt: skip
    assert response.status_code == 400
    assert SUMMARY in response.text
    assert "“Small Business Guide” is already in " + where in response.text
    db.session.expire_all()
    count = db.session.scalar(db.select(db.func.count()).select_from(table))
    assert count == 1  # the other click's


def test_a_retired_resource_cannot_be_attached_by_the_service(make_event, make_resource, organiser):
    with pytest.raises(services.ResourceError, match="is retired"):
        attachments.attach_to_event(
            make_event(), make_resource(status=ResourceStatus.retired), by=organiser
        )


def _attach_everywhere(event, talk, *resources) -> None:
    for resource in resources:
        db.session.add(EventResource(event_id=event.id, resource_id=resource.id))
        db.session.add(AgendaItemResource(agenda_item_id=talk.id, resource_id=resource.id))
    db.session.commit()


def test_the_event_page_sends_people_to_successors_never_to_a_replaced_address(
    client, make_event, make_item, make_resource
):
    event = make_event()
    talk = make_item(event, title="A talk")
    new = make_resource("NCSC home", url="https://www.ncsc.gov.uk/")
    old = make_resource("CESG", url="http://www.cesg.gov.uk/", superseded_by_id=new.id,
                        staff_note="CESG became part of the NCSC in October 2016.")  # fmt: skip
    draft = make_resource("Not yet", status=ResourceStatus.draft)
    retired = make_resource("Gone away", status=ResourceStatus.retired)
    moved = make_resource("Moved on", status=ResourceStatus.retired, superseded_by_id=new.id)
    _attach_everywhere(event, talk, old, draft, retired, moved)
    page = client.get(f"/events/{event.slug}").text
    assert 'href="http://www.cesg.gov.uk/"' not in page  # the dead address is not a link
    # The main link is the successor, once per list; the old ones are named, linking to their
    # pages in the library, with what the Chamber knows.
    assert page.count(
        'href="https://www.ncsc.gov.uk/" rel="noopener" class="has-address">NCSC home</a>'
    ) == 2  # fmt: skip
    assert page.count('Replaces:</strong> <a href="/resources/') == 4
    assert page.count('<a href="/resources/' + old.slug + '">CESG</a>') == 2
    assert page.count('<a href="/resources/' + moved.slug + '">Moved on</a>') == 2
    assert "CESG became part of the NCSC in October 2016." in page
    # Drafts never show; a retired resource with nothing in its place is left off what is to come.
    assert "Not yet" not in page and "Gone away" not in page
    assert 'href="/events/' + event.slug + '/resources"' in page
    shown = attachments.event_resources(event)
    assert [(s.resource.title, [o.title for o in s.replaces]) for s in shown.event_wide] == [
        ("NCSC home", ["CESG", "Moved on"])
    ]


def test_a_past_events_record_keeps_a_retired_resource_without_its_dead_address(
    client, make_event, make_item, make_resource
):
    event = make_event(starts_at=at(-400))
    talk = make_item(event, title="A talk")
    ended = make_resource(
        "Vouchers", url="https://vouchers.example/", status=ResourceStatus.retired,
        staff_note="The scheme has ended.",
    )  # fmt: skip
    _attach_everywhere(event, talk, ended)
    page = client.get(f"/events/{event.slug}").text
    assert 'href="https://vouchers.example/"' not in page
    assert page.count(f'<a href="/resources/{ended.slug}">Vouchers</a>') == 2
    assert page.count("No longer available") == 2
    assert "The scheme has ended." in page


def test_an_event_without_resources_says_nothing_about_them(client, make_event):
    event = make_event()
    page = client.get(f"/events/{event.slug}").text
    assert 'id="resources"' not in page and "Resources for this talk" not in page


def test_the_event_pages_queries_do_not_grow_with_its_resources(
    client, make_event, make_item, make_resource
):
    event = make_event()
    items = [make_item(event, minutes_in=30 * n, title=f"Talk {n}") for n in range(4)]

    def attach(count: int) -> None:
        for _ in range(count):
            successor = make_resource()
            resource = make_resource(superseded_by_id=successor.id)
            db.session.add(EventResource(event_id=event.id, resource_id=resource.id))
            for item in items:
                db.session.add(AgendaItemResource(agenda_item_id=item.id, resource_id=resource.id))
        db.session.commit()

    def queries(path: str) -> int:
        client.get(path)
        with count_queries() as statements:
            assert client.get(path).status_code == 200
        return len(statements)

    attach(1)
    few = {
        path: queries(path) for path in (f"/events/{event.slug}", f"/events/{event.slug}/resources")
    }
    attach(12)
    many = {path: queries(path) for path in few}
    assert many == few
    assert attachments.event_resources(event).count == 13 * 5


def test_a_chain_of_replacements_ends_at_the_last_published_one(make_resource):
    c = make_resource("C")
    b = make_resource("B", superseded_by_id=c.id)
    a = make_resource("A", superseded_by_id=b.id)
    assert services.current_successor(a) is c
    c.status = ResourceStatus.retired
    db.session.commit()
    assert services.current_successor(a) is b


def test_a_resources_staff_page_lists_where_it_is_used(
    organiser_client, make_event, make_item, make_resource
):
    resource = make_resource("Used twice")
    event = make_event(title="Spring seminar")
    talk = make_item(event, title="Phishing talk")
    db.session.add(EventResource(event_id=event.id, resource_id=resource.id))
    db.session.add(AgendaItemResource(agenda_item_id=talk.id, resource_id=resource.id))
    db.session.commit()
    page = organiser_client.get(f"/staff/resources/{resource.id}").text
    assert "Spring seminar" in page and "beside “Phishing talk”" in page
    events_page = organiser_client.get("/staff/resources/events").text
    assert "Spring seminar" in events_page


# --- who may do what -----------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_log_in_and_change_nothing(client, make_resource):
    resource = make_resource(status=ResourceStatus.draft)
    for path in (
        "/staff/resources/",
        "/staff/resources/new/link",
        f"/staff/resources/{resource.id}",
    ):
        response = client.get(path)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/staff/login?next=")
    response = client.post(
        f"/staff/resources/{resource.id}/publish", data={"csrf_token": csrf_token(client)}
    )
    assert response.headers["Location"].startswith("/staff/login?next=")
    db.session.expire_all()
    assert resource.status == ResourceStatus.draft


def test_a_checkin_volunteer_is_refused(checkin_client, make_resource):
    resource = make_resource(status=ResourceStatus.draft)
    token = csrf_token(checkin_client, "/staff/")
    assert checkin_client.get("/staff/resources/").status_code == 403
    response = checkin_client.post(
        "/staff/resources/new/link", data={**LINK_FORM, "csrf_token": token}
    )
    assert response.status_code == 403
    response = checkin_client.post(
        f"/staff/resources/{resource.id}/publish", data={"csrf_token": token}
    )
    assert response.status_code == 403
    db.session.expire_all()
    assert [r.status for r in all_resources()] == [ResourceStatus.draft]
    assert 'href="/staff/resources/"' not in checkin_client.get("/staff/").text


def test_organisers_see_resources_in_the_staff_menu_and_everyone_sees_the_library(
    organiser_client, client
):
    assert 'href="/staff/resources/"' in organiser_client.get("/staff/").text
    assert 'href="/resources"' in client.get("/").text


# --- a past event's page -------------------------------------------------------------------------


def test_a_past_event_puts_its_resources_near_the_top_and_offers_no_calendar(
    client, make_event, make_item, make_resource
):
    event = make_event(starts_at=at(-30))
    talk = make_item(event, title="A talk")
    _attach_everywhere(event, talk, make_resource("NCSC home"))
    page = client.get(f"/events/{event.slug}").text
    callout = page.index("Resources from this seminar")
    assert callout < page.index('id="agenda"') and callout < page.index("A talk")
    box = page[callout : page.index("</aside>", callout)]
    assert f'href="/events/{event.slug}/resources"' in box
    assert f'href="/events/{event.slug}/resources.html"' in box
    assert "Add to calendar" not in page and "Google Calendar" not in page
    assert "Outlook" not in page and ".ics" not in page
    # The files themselves are still served, for anyone who kept a link.
    assert client.get(f"/events/{event.slug}.ics").status_code == 200
    assert client.get(f"/events/{event.slug}/agenda/{talk.id}.ics").status_code == 200


def test_an_upcoming_event_keeps_its_calendar_links_and_has_no_past_resources_box(
    client, make_event, make_item, make_resource
):
    event = make_event()
    talk = make_item(event, title="A talk")
    _attach_everywhere(event, talk, make_resource("NCSC home"))
    page = client.get(f"/events/{event.slug}").text
    assert "Resources from this seminar" not in page
    assert "Add to calendar (.ics)" in page and "Add to Google Calendar" in page


def test_a_past_event_without_resources_has_no_resources_box(client, make_event):
    event = make_event(starts_at=at(-30))
    assert "Resources from this seminar" not in client.get(f"/events/{event.slug}").text


# --- wording and links on resource pages ---------------------------------------------------------


def test_the_staff_category_filter_says_what_it_does(organiser_client, make_resource):
    make_resource(category="Cyber security")
    page = organiser_client.get("/staff/resources/").text
    assert "Any status." not in page
    assert "Only resources in this category, in the status chosen above." in page


def test_tags_are_links_to_the_search_on_the_staff_and_public_pages(
    organiser_client, client, make_resource
):
    resource = make_resource(tags=",phishing,small business,")
    staff = organiser_client.get(f"/staff/resources/{resource.id}").text
    assert '<a class="tag tag-topic" href="/staff/resources/?q=phishing">phishing</a>' in staff
    assert 'href="/staff/resources/?q=small+business">small business</a>' in staff
    public = client.get(f"/resources/{resource.slug}").text
    assert '<a class="tag tag-topic" href="/resources?q=phishing">phishing</a>' in public
    assert library_titles(client, q="phishing") == [resource.title]


def test_a_guide_beside_a_talk_lists_the_event_it_was_shared_at(
    client, make_event, make_item, make_resource
):
    guide = make_resource("Five steps", kind=ResourceKind.guide)
    event = make_event(title="Cyber morning")
    hidden = make_event(title="Hidden", status=EventStatus.draft)
    for shown_at in (event, hidden):
        db.session.add(AgendaItemResource(agenda_item_id=make_item(shown_at).id,
                                          resource_id=guide.id))  # fmt: skip
    db.session.add(EventResource(event_id=event.id, resource_id=guide.id))  # listed once
    db.session.commit()
    page = client.get(f"/resources/{guide.slug}").text
    shared = page[page.index("<dt>Shared at</dt>") :]
    assert shared.count("Cyber morning") == 1 and "Hidden" not in page
    db.session.execute(db.delete(EventResource))
    db.session.commit()
    page = client.get(f"/resources/{guide.slug}").text
    assert "<dt>Shared at</dt>" in page and "Cyber morning" in page
