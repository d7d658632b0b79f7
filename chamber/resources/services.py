"""Operations on the resource library: checking, saving, publishing, retiring and superseding
resources, following chains of successors, and searching. Attaching them to events and talks is in
`attachments.py`. Each operation flushes and never commits."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import ColumnElement, Exists, Select, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased, selectinload

from chamber.auth.models import StaffUser
from chamber.core.errors import Refusal
from chamber.core.text import slugify
from chamber.core.times import utcnow
from chamber.core.urls import url_fault
from chamber.extensions import db
from chamber.members.models import SizeBand
from chamber.resources.models import (
    LinkState,
    Resource,
    ResourceKind,
    ResourceStatus,
)

log = logging.getLogger(__name__)

PLAIN_FIELDS = ("title", "publisher", "description", "category", "staff_note")
MAX_TAGS_LENGTH = 500  # the column's size, commas included
MAX_TAG_LENGTH = 40
MAX_CHAIN = 8  # successors followed at most: A replaced by B replaced by C...
BANDS = frozenset(band.value for band in SizeBand)  # `in SizeBand` warns on Python 3.11


class ResourceError(Refusal):
    """A change that would break a rule about resources; the message is shown to the user."""


@dataclass(frozen=True)
class ResourceDetails:
    """What staff set on a resource. `url` is a link's and `body` a guide's (the other kind's is
    not used); `kind` counts only on creation; `slug` may be blank (made from the title); `tags`
    as typed; `audience` SizeBand values, none meaning every size."""

    kind: ResourceKind
    title: str
    slug: str
    url: str
    body: str
    publisher: str
    description: str
    category: str
    tags: str
    staff_note: str
    audience: tuple[str, ...]


# --- values --------------------------------------------------------------------------------------


def web_address_problem(url: str) -> str | None:
    """Why `url` is not a plain http(s) address a visitor may safely follow, or None if it is."""
    example = "like https://www.ncsc.gov.uk/"
    fault = url_fault(url)
    if fault == "hidden":
        return f"Web address cannot contain spaces or hidden characters; enter it {example}."
    if fault == "malformed":
        return f"Enter a real web address, {example}."
    if fault == "scheme":
        scheme = urlsplit(url).scheme.lower()
        if not scheme or scheme in ("www", "localhost") or "." in scheme:
            return f"Enter the full web address, starting with https:// or http://, {example}."
        return (
            f"Web address must start with https:// or http:// ({scheme}: addresses are not "
            f"allowed); enter it {example}."
        )
    if fault == "host":
        return f"Enter the full web address, with the site's name, {example}."
    if fault == "credentials":
        return "Web address cannot contain a user name or password."
    return None


def tags_from_text(text: str) -> str:
    """Comma-separated tags as stored: lower-case, single spaces, no repeats, a comma each end."""
    tags = []
    for raw in (text or "").split(","):
        tag = " ".join(raw.split()).lower()
        if tag and tag not in tags:
            tags.append(tag)
    return f",{','.join(tags)}," if tags else ""


def tags_problem(text: str) -> str | None:
    tags = [tag for tag in tags_from_text(text).split(",") if tag]
    if long := [tag for tag in tags if len(tag) > MAX_TAG_LENGTH]:
        return f"Each tag must be {MAX_TAG_LENGTH} characters or fewer (“{long[0][:20]}…” is not)."
    if len(tags_from_text(text)) > MAX_TAGS_LENGTH:
        return "Too many tags: use fewer or shorter ones."
    return None


def audience_from_bands(bands: list[str] | tuple[str, ...]) -> str:
    """Business sizes as stored, in size order; all four (or none) means everyone: empty."""
    chosen = [band.value for band in SizeBand if band.value in set(bands)]
    if not chosen or len(chosen) == len(SizeBand):
        return ""
    return f",{','.join(chosen)},"


def audience_labels(resource: Resource) -> list[str]:
    return [SizeBand(value).short_label for value in resource.audience_list if value in BANDS]


# --- reading -------------------------------------------------------------------------------------


def get_by_slug(slug: str) -> Resource | None:
    if "\x00" in slug:  # no slug holds one, and PostgreSQL refuses it in a query
        return None
    resource: Resource | None = db.session.scalar(
        db.select(Resource)
        .where(Resource.slug == slug)
        .options(selectinload(Resource.superseded_by))
    )
    return resource


def slug_taken(slug: str, exclude_id: int | None = None) -> bool:
    query = db.select(Resource.id).where(Resource.slug == slug)
    if exclude_id is not None:
        query = query.where(Resource.id != exclude_id)
    return db.session.scalar(query) is not None


def unique_slug(title: str, exclude_id: int | None = None) -> str:
    base = slugify(title, max_length=72)
    if base == "event" and "event" not in title.lower():  # slugify's fallback for "李" and the like
        base = "resource"
    slug, counter = base, 2
    while slug_taken(slug, exclude_id):
        slug, counter = f"{base}-{counter}", counter + 1
    return slug


def same_address(url: str, exclude_id: int | None = None) -> Resource | None:
    """Another resource that links to exactly this address: staff are told, to avoid duplicates."""
    query = db.select(Resource).where(Resource.url == url)
    if exclude_id is not None:
        query = query.where(Resource.id != exclude_id)
    other: Resource | None = db.session.scalar(query.order_by(Resource.id).limit(1))
    return other


def _like(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_query(
    q: str = "",
    *,
    category: str = "",
    publisher: str = "",
    audience: str = "",
    statuses: tuple[ResourceStatus, ...] | None = (ResourceStatus.published,),
    kind: ResourceKind | None = None,
    fold_replaced: bool = False,
) -> Select[tuple[Resource]]:
    """A select of resources: every word of `q` in the title, description, publisher or tags
    (case-insensitive), and each filter given. `audience` is a SizeBand value; a resource with no
    audience is meant for every size and always matches. Current resources come before replaced
    ones, then by title.

    `fold_replaced` (the public library): a resource whose successor is published is not listed
    on its own but named under its successor (`replaced_by_page`), and a search for its words
    finds the successor."""
    query = db.select(Resource)
    if statuses is not None:
        query = query.where(Resource.status.in_(statuses))
    old = aliased(Resource)
    for word in q.split()[:10]:  # ten words is plenty, and bounds the query
        pattern = _like(word)
        matches = _matches(Resource, pattern)
        if fold_replaced:
            matches = db.or_(
                matches,
                db.select(old.id)
                .where(
                    old.superseded_by_id == Resource.id,
                    old.status != ResourceStatus.draft,
                    _matches(old, pattern),
                )
                .exists(),
            )
        query = query.where(matches)
    if fold_replaced:
        query = query.where(~_has_published_successor())
    if category:
        query = query.where(Resource.category == category)
    if publisher:
        query = query.where(Resource.publisher == publisher)
    if audience in BANDS:
        query = query.where(
            db.or_(Resource.audience == "", Resource.audience.like(f"%,{audience},%"))
        )
    if kind is not None:
        query = query.where(Resource.kind == kind)
    ordered: Select[tuple[Resource]] = query.options(selectinload(Resource.superseded_by)).order_by(
        Resource.superseded_by_id.is_not(None), db.func.lower(Resource.title), Resource.id
    )
    return ordered


def _matches(model: type[Resource], pattern: str) -> ColumnElement[bool]:
    return or_(
        model.title.ilike(pattern, escape="\\"),
        model.description.ilike(pattern, escape="\\"),
        model.publisher.ilike(pattern, escape="\\"),
        model.tags.ilike(pattern, escape="\\"),
    )


def _has_published_successor() -> Exists:
    successor = aliased(Resource)
    return (
        select(successor.id)
        .where(
            successor.id == Resource.superseded_by_id,
            successor.status == ResourceStatus.published,
        )
        .exists()
    )


def replaced_by_page(resources: list[Resource]) -> dict[int, list[Resource]]:
    """For the public library: the resources each of `resources` replaces (published or retired),
    by successor id, in one query."""
    ids = [resource.id for resource in resources]
    found: dict[int, list[Resource]] = {}
    if not ids:
        return found
    for old in db.session.scalars(
        db.select(Resource)
        .where(Resource.superseded_by_id.in_(ids), Resource.status != ResourceStatus.draft)
        .order_by(db.func.lower(Resource.title), Resource.id)
    ):
        found.setdefault(old.superseded_by_id, []).append(old)
    return found


def filter_choices(
    statuses: tuple[ResourceStatus, ...] = (ResourceStatus.published,),
    *,
    fold_replaced: bool = False,
) -> tuple[list[str], list[str]]:
    """The categories and publishers in use, for the filter menus (two queries). With
    `fold_replaced`, only those of resources the public library lists on their own."""
    listed: list[ColumnElement[bool]] = [Resource.status.in_(statuses)]
    if fold_replaced:
        listed.append(~_has_published_successor())
    categories = db.session.scalars(
        db.select(Resource.category)
        .where(*listed, Resource.category != "")
        .distinct()
        .order_by(Resource.category)
    )
    publishers = db.session.scalars(
        db.select(Resource.publisher)
        .where(*listed, Resource.publisher != "")
        .distinct()
        .order_by(Resource.publisher)
    )
    return list(categories), list(publishers)


def status_counts() -> dict[str, int]:
    """How many resources in each status, and how many have been replaced, in one query."""
    rows = db.session.execute(
        db.select(
            Resource.status,
            db.func.count(Resource.id),
            db.func.count(Resource.superseded_by_id),
        ).group_by(Resource.status)
    ).all()
    counts = {status.value: 0 for status in ResourceStatus} | {"superseded": 0, "all": 0}
    for status, total, superseded in rows:
        counts[ResourceStatus(status).value] = total
        counts["superseded"] += superseded
        counts["all"] += total
    return counts


def successor_choices(resource: Resource | None) -> list[Resource]:
    """Resources that may replace `resource`: published ones other than itself."""
    query = db.select(Resource).where(Resource.status == ResourceStatus.published)
    if resource is not None:
        query = query.where(Resource.id != resource.id)
    return list(db.session.scalars(query.order_by(db.func.lower(Resource.title), Resource.id)))


def attachable() -> list[Resource]:
    """Resources staff may add to an event or a talk: drafts and published ones, not retired."""
    return list(
        db.session.scalars(
            db.select(Resource)
            .where(Resource.status != ResourceStatus.retired)
            .order_by(db.func.lower(Resource.title), Resource.id)
        )
    )


def load_chains(resources: list[Resource]) -> dict[int, Resource]:
    """Every resource in the chains of replacement that start at `resources`, by id: one query
    per step along the chains, however many resources there are."""
    known = {resource.id: resource for resource in resources}
    wanted = {r.superseded_by_id for r in resources if r.superseded_by_id} - set(known)
    for _ in range(MAX_CHAIN):
        if not wanted:
            break
        found = db.session.scalars(db.select(Resource).where(Resource.id.in_(wanted))).all()
        known.update((resource.id, resource) for resource in found)
        wanted = {r.superseded_by_id for r in found if r.superseded_by_id} - set(known)
    return known


def resolve(resource: Resource, known: dict[int, Resource]) -> Resource | None:
    """The last published resource along `resource`'s chain of replacements."""
    found, step, seen = None, resource, {resource.id}
    while step.superseded_by_id and step.superseded_by_id not in seen:
        following = known.get(step.superseded_by_id)
        if following is None:
            break
        step = following
        seen.add(step.id)
        if step.is_published:
            found = step
    return found


def current_successor(resource: Resource) -> Resource | None:
    """The published resource that now stands in for `resource`, following a chain of
    replacements (one query per step, at most MAX_CHAIN)."""
    return resolve(resource, load_chains([resource]))


# --- saving --------------------------------------------------------------------------------------


def save_resource(
    resource: Resource | None, details: ResourceDetails, *, by: StaffUser
) -> Resource:
    """Create a resource (a draft, when `resource` is None) or change one to `details`.

    A link given a new address is unchecked again, as what the checker found was about the old
    one.
    """
    creating = resource is None
    old_url = None if resource is None else resource.url
    if resource is None:
        resource = Resource(kind=details.kind, status=ResourceStatus.draft)
    for name in PLAIN_FIELDS:
        setattr(resource, name, getattr(details, name) or "")
    if problem := tags_problem(details.tags):
        raise ResourceError(problem)
    resource.tags = tags_from_text(details.tags)
    resource.audience = audience_from_bands(details.audience)
    if resource.is_link:
        resource.url = (details.url or "").strip()
        if not resource.url:
            raise ResourceError("Enter the link's web address.")
        if problem := web_address_problem(resource.url):
            raise ResourceError(problem)
        if not creating and resource.url != old_url:
            _forget_link_health(resource)
    else:
        resource.url = None
        resource.body = details.body or ""
        if not resource.body.strip():
            raise ResourceError("Write the guide's text.")
    slug = (details.slug or "").strip()
    if slug and slug != resource.slug:
        if slug_taken(slug, exclude_id=resource.id):
            raise ResourceError("Another resource already uses this web address.")
        resource.slug = slug
    resource.slug = resource.slug or unique_slug(resource.title, exclude_id=resource.id)
    if creating:
        db.session.add(resource)
    try:
        db.session.flush()
    except IntegrityError as error:  # another save took the address after `slug_taken` looked
        raise ResourceError("Another resource already uses this address.", field="slug") from error
    log.info("%s %s resource %s", by.email, "created" if creating else "changed", resource.id)
    return resource


def _forget_link_health(resource: Resource) -> None:
    """Back to unchecked, with no last result; the history rows stay, each naming the address it
    checked (`LinkCheck.url`)."""
    resource.link_state = LinkState.unchecked
    resource.last_checked_at = None
    resource.last_status_code = None
    resource.final_url = None
    resource.last_error = None


def publish(resource: Resource, *, by: StaffUser) -> None:
    if resource.is_published:
        return
    resource.status = ResourceStatus.published
    resource.published_at = utcnow()
    resource.retired_at = None
    db.session.flush()
    log.info("%s published resource %s", by.email, resource.id)


def unpublish(resource: Resource, *, by: StaffUser) -> None:
    """Back to a draft: hidden from the public until published again."""
    resource.status = ResourceStatus.draft
    resource.retired_at = None
    db.session.flush()
    log.info("%s unpublished resource %s", by.email, resource.id)


def retire(resource: Resource, *, by: StaffUser) -> None:
    """Hide from the library and packs; its page stays, saying so and naming any successor."""
    if resource.is_retired:
        return
    resource.status = ResourceStatus.retired
    resource.retired_at = utcnow()
    db.session.flush()
    log.info("%s retired resource %s", by.email, resource.id)


def supersede(resource: Resource, successor: Resource | None, *, by: StaffUser) -> None:
    """Mark `resource` as replaced by `successor` (None: by nothing any more)."""
    if successor is None:
        resource.superseded_by = None
        db.session.flush()
        log.info("%s marked resource %s as not replaced", by.email, resource.id)
        return
    if successor.id == resource.id:
        raise ResourceError("A resource cannot replace itself: choose another one.")
    if not successor.is_published:
        raise ResourceError(f"“{successor.title}” is not published: publish it first.")
    step: Resource | None = successor
    seen: set[int] = set()
    while step is not None and step.superseded_by_id is not None and step.id not in seen:
        seen.add(step.id)
        if step.superseded_by_id == resource.id:
            raise ResourceError(
                f"“{successor.title}” is itself replaced by “{resource.title}” (directly or "
                "through others): that would go round in a circle."
            )
        step = db.session.get(Resource, step.superseded_by_id)
    resource.superseded_by = successor
    db.session.flush()
    log.info("%s marked resource %s as replaced by %s", by.email, resource.id, successor.id)


_TAG = re.compile(r"<[a-zA-Z!/?]")  # as a browser reads a tag; "a < b" is text


def looks_like_markup(text: str) -> bool:
    """True for text holding an HTML tag: plain-text fields refuse it with a reason."""
    return bool(_TAG.search(text or ""))
