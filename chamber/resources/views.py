"""Public pages: the resource library, a page per resource, and each event's resource pack (to read,
to print on A4, and to download as one self-contained HTML file)."""

from __future__ import annotations

import base64
import hashlib
import re
from html import unescape as html_unescape
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, render_template, request
from flask_login import current_user
from markupsafe import Markup

from chamber.core.pagination import paginate
from chamber.core.times import utcnow
from chamber.events import services as events
from chamber.events.models import Event
from chamber.members.models import SizeBand
from chamber.resources import attachments, services
from chamber.resources.models import ResourceStatus

bp = Blueprint("resources", __name__)

MAX_QUERY = 200


def _arg(name: str, limit: int = 120) -> str:
    value = request.args.get(name, "", type=str) or ""
    return value.replace("\x00", "").strip()[:limit]


def _is_staff() -> bool:
    return bool(current_user.is_authenticated and current_user.is_organiser)


@bp.get("/resources")
def index():
    q = _arg("q", MAX_QUERY)
    category, publisher, audience = _arg("category"), _arg("publisher"), _arg("audience")
    if audience not in services.BANDS:
        audience = ""
    query = services.search_query(
        q, category=category, publisher=publisher, audience=audience, fold_replaced=True
    )
    page = paginate(query, per_page=20)
    categories, publishers = services.filter_choices(fold_replaced=True)
    filters = {"q": q, "category": category, "publisher": publisher, "audience": audience}
    return render_template(
        "resources/index.html",
        page=page,
        filters=filters,
        active={key: value for key, value in filters.items() if value},
        categories=categories,
        publishers=publishers,
        bands=list(SizeBand),
        replaces=services.replaced_by_page(page.items),
    )


@bp.get("/resources/<slug>")
def show(slug: str):
    resource = services.get_by_slug(slug)
    if resource is None or (resource.status == ResourceStatus.draft and not _is_staff()):
        abort(404)
    return render_template(
        "resources/show.html",
        resource=resource,
        successor=services.current_successor(resource),
        replaces=services.replaced_by_page([resource]).get(resource.id, []),
        audience=services.audience_labels(resource),
        shared_at=attachments.shared_at(resource),
        host=urlsplit(resource.url).hostname if resource.url else "",
        staff_preview=_is_staff(),
    )


def _pack_event_or_404(slug: str) -> Event:
    if "\x00" in slug:
        abort(404)
    event = events.event_with_agenda(slug)
    if event is None or not (event.is_published or _is_staff()):
        abort(404)
    return event


def _pack_context(event: Event) -> dict:
    found = attachments.event_resources(event)
    talks = [(item, found.for_item(item.id)) for item in event.agenda_items]
    return {
        "event": event,
        "found": found,
        "talks": [(item, shown) for item, shown in talks if shown],
        "now": utcnow(),
    }


@bp.get("/events/<slug>/resources")
def pack(slug: str):
    event = _pack_event_or_404(slug)
    return render_template("resources/pack.html", **_pack_context(event))


def _offline_css() -> str:
    return current_app.jinja_env.get_template("resources/offline.css").render()


@bp.get("/events/<slug>/resources.html")
def pack_download(slug: str):
    """The pack as one HTML file to keep: styles inline, no scripts, nothing fetched from
    anywhere, every address written out in full."""
    event = _pack_event_or_404(slug)
    css = _offline_css()
    html = render_template(
        "resources/pack_offline.html",
        css=Markup(css),  # noqa: S704 - our own stylesheet, from a template in the package
        **_pack_context(event),
    )
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    response = current_app.response_class(html, mimetype="text/html")
    response.headers["Content-Disposition"] = f'attachment; filename="{event.slug}-resources.html"'
    # Its own policy: the one inline stylesheet (by its hash) and nothing else at all.
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; style-src 'sha256-{digest}'; img-src data:; object-src 'none'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return response


_LINK = re.compile(r'<a href="([^"]*)"([^>]*)>(.*?)</a>', re.DOTALL)


@bp.app_template_filter("with_addresses")
def with_addresses(html: Markup) -> Markup:
    """Sanitised HTML with each link's address written out after it, for paper and offline
    copies, where an underlined word cannot be followed."""

    def write_out(match: re.Match) -> str:
        href, text = match.group(1), match.group(3)
        if html_unescape(re.sub(r"<[^>]*>", "", text)) == html_unescape(href):
            return match.group(0)
        return f'{match.group(0)} <span class="written-address">({href})</span>'

    return Markup(_LINK.sub(write_out, str(html)))  # noqa: S704 - rewrites already-safe HTML
