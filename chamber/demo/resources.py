"""The demo resource library: the seed article's five links as published in 2016, each with what
staff know about it now and a current successor where it is gone, the seminar's five-step security
plan as a guide, all of it attached to the seminar's editions and talks, and an illustrative
history of link checks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from chamber.auth.models import StaffUser
from chamber.core.times import utcnow
from chamber.demo import seminar
from chamber.events.models import Event
from chamber.extensions import db
from chamber.resources import attachments, health
from chamber.resources import services as resources
from chamber.resources.checker import BROKEN, OK, REDIRECTED, UNREACHABLE, Hop, LinkResult
from chamber.resources.models import LinkCheckRun, Resource, ResourceKind

CYBER = "Cyber security"
FRAUD = "Fraud"
TRAINING = "Training"
FUNDING = "Funding"
PLANNING = "Planning"


@dataclass(frozen=True)
class Entry:
    slug: str
    title: str
    url: str | None
    publisher: str
    category: str
    tags: str
    description: str
    staff_note: str = ""
    audience: tuple[str, ...] = ()  # SizeBand values; none means every size
    replaced_by: str | None = None  # the slug of its successor
    body: str = ""  # guides only
    ended: bool = False  # gone, with nothing in its place: retired once the 2016 edition has it


# Today's resources, published first so that the article's links can point to them.
CURRENT = (
    Entry(
        "ncsc",
        "National Cyber Security Centre",
        "https://www.ncsc.gov.uk/",
        "NCSC",
        CYBER,
        "ncsc, incident, advice, cyber attack",
        "The UK's technical authority for cyber security, part of GCHQ: guidance for "
        "organisations of every size, and where to report a significant cyber incident.",
    ),
    Entry(
        "cyber-essentials",
        "Cyber Essentials",
        "https://www.ncsc.gov.uk/cyberessentials/overview",
        "NCSC",
        CYBER,
        "cyber essentials, certification, baseline, supply chain",
        "The government-backed scheme that shows a business has the basic technical controls "
        "that stop the most common cyber attacks, with self-assessed and independently "
        "audited (Plus) certificates.",
        "Still the government-backed baseline. Run by the NCSC; certificates are issued through "
        "its delivery partner (IASME since 2020). Some public-sector contracts ask for it.",
    ),
    Entry(
        "ncsc-small-business-guide",
        "Small Business Guide: cyber security",
        "https://www.ncsc.gov.uk/collection/small-business-guide",
        "NCSC",
        CYBER,
        "small business, backups, passwords, phishing, malware, devices",
        "Five low-cost steps for a small business: back up your data, protect against malware, "
        "keep smartphones and tablets safe, use passwords well, and avoid phishing attacks.",
        audience=("micro", "small"),
    ),
    Entry(
        "get-safe-online",
        "Get Safe Online",
        "https://www.getsafeonline.org/",
        "Get Safe Online",
        CYBER,
        "advice, fraud, passwords, shopping, staff awareness",
        "Free, plain-English advice on protecting yourself, your devices and your business "
        "from fraud, identity theft and other problems online.",
        "Still running, backed by government, police and business partners.",
        audience=("micro", "small"),
    ),
    Entry(
        "action-fraud",
        "Action Fraud: report fraud and cyber crime",
        "https://www.actionfraud.police.uk/",
        "Action Fraud",
        FRAUD,
        "report, fraud, cyber crime, police, incident",
        "The UK's national reporting centre for fraud and cyber crime in England, Wales and "
        "Northern Ireland, run by the City of London Police.",
        "Being replaced by a new national service called Report Fraud, run by the City of London "
        "Police; check which address is live before sending people to it. In Scotland, report to "
        "Police Scotland on 101.",
    ),
)

# The article's "Further information" links, exactly as it printed them (with the scheme added).
ARTICLE = (
    Entry(
        "cyber-streetwise-cyber-essentials",
        "Cyber Essentials (Cyber Streetwise)",
        "http://www.cyberstreetwise.com/cyberessentials/",
        "HM Government (Cyber Streetwise)",
        CYBER,
        "cyber essentials, certification, 2016 seminar",
        "Cyber Essentials on the Government's Cyber Streetwise campaign site, as given at the "
        "2016 seminar.",
        "Cyber Streetwise was the Government's awareness campaign; it was later replaced by "
        "Cyber Aware, and this address no longer leads to Cyber Essentials. The scheme itself is "
        "still the government-backed baseline, now run by the NCSC: see its page instead.",
        replaced_by="cyber-essentials",
    ),
    Entry(
        "gov-uk-cyber-security-publications",
        "All you need to know about cyber security",
        "http://www.gov.uk/government/publications/",
        "GOV.UK",
        CYBER,
        "guidance, government, 2016 seminar",
        "Government publications on cyber security for businesses, as given at the 2016 seminar.",
        "This address is GOV.UK's list of every government publication, not a cyber security "
        "page. Most cyber security guidance for businesses is now published by the NCSC; its "
        "Small Business Guide is the best place to start.",
        replaced_by="ncsc-small-business-guide",
    ),
    Entry(
        "national-archives-sme-courses",
        "Free online information and security courses",
        "http://www.nationalarchives.gov.uk/sme/",
        "The National Archives",
        TRAINING,
        "training, staff, e-learning, 2016 seminar",
        "Free online courses on protecting information, for small and medium-sized businesses, "
        "as given at the 2016 seminar.",
        "We believe these courses are no longer offered at this address. The NCSC now offers free "
        "cyber security training for staff (Top Tips for Staff) alongside its Small Business "
        "Guide.",
        audience=("micro", "small", "medium"),
        replaced_by="ncsc-small-business-guide",
    ),
    Entry(
        "cesg-cpni-incident-response",
        "Cyber incident response services (CESG and CPNI)",
        "http://www.cesg.gov.uk/",
        "CESG and CPNI",
        CYBER,
        "incident, response, cesg, cpni, 2016 seminar",
        "Cyber incident response services, as given at the 2016 seminar: CESG (www.cesg.gov.uk) "
        "and the Centre for the Protection of National Infrastructure (www.cpni.gov.uk).",
        "In October 2016 CESG, GCHQ's information security arm, and CPNI's cyber role became part "
        "of the new National Cyber Security Centre; the old addresses no longer lead to these "
        "services. CPNI itself became the National Protective Security Authority (NPSA) in 2023. "
        "For help with an incident, start at the NCSC, which lists assured incident response "
        "companies; report a crime to Action Fraud.",
        audience=("medium", "large"),
        replaced_by="ncsc",
    ),
    Entry(
        "innovate-uk-cyber-security-vouchers",
        "Cyber security innovation vouchers",
        "https://vouchers.innovateuk.org/cyber-security",
        "Innovate UK",
        FUNDING,
        "funding, vouchers, grants, 2016 seminar",
        "Innovate UK vouchers that paid for expert cyber security advice for small businesses, "
        "as given at the 2016 seminar.",
        "This voucher scheme has ended, and we know of no direct replacement. Ask the Chamber "
        "about current support for businesses seeking cyber security advice.",
        audience=("micro", "small", "medium"),
        ended=True,
    ),
)

PLAN_BODY = """\
Five steps to a security plan for your business, from the Crime Reduction and Community Safety
Unit's talk at our 2016 cybercrime seminar. Work through them in order, then start again.

1. **Audit.** Identify the assets and information that need to be protected, and review the
   threats and risks to them. Make a prioritised list of what to protect.
2. **Plan.** Write procedures and policies, decide who is responsible for each part, and agree a
   timetable for putting them in place.
3. **Execute.** Tell your staff about the plan, train them where they need it, and put the plan
   into practice.
4. **Monitor.** Scan for new threats. Update the plan as people, hardware or software change, and
   keep up maintenance such as backups and anti-virus updates.
5. **Repeat.** Review and update the plan at regular intervals, and whenever your business goes
   through a significant change.

The [Cyber Essentials](https://www.ncsc.gov.uk/cyberessentials/overview) scheme is a good
baseline for the technical controls your plan should cover.
"""

GUIDE = Entry(
    "five-step-security-plan",
    "Five steps to a business security plan",
    None,
    "Hertfordshire Chamber of Commerce",
    PLANNING,
    "security plan, audit, policies, training, backups, 2016 seminar",
    "Audit, Plan, Execute, Monitor, Repeat: a simple cycle for keeping your business secure.",
    body=PLAN_BODY,
)

# Where each resource appears at the seminar: the whole event, or beside a talk (by its title).
# The 2016 edition keeps the article's list as it was handed out (pages show what replaces each);
# an upcoming edition hands out today's resources.
EVENT_WIDE_PAST = tuple(entry.slug for entry in ARTICLE)  # the article's list, in its order
EVENT_WIDE_UPCOMING = (
    "ncsc-small-business-guide", "cyber-essentials", "get-safe-online", "action-fraud",
    "five-step-security-plan",
)  # fmt: skip
BESIDE_TALKS = {
    "What one tweet gives away": ("get-safe-online",),
    "Malware from websites you trust": ("ncsc-small-business-guide",),
    "Cyber Essentials and your security plan": (
        "five-step-security-plan", "cyber-essentials",
    ),
    "Counting the cost: cybercrime and insurance": ("action-fraud",),
}  # fmt: skip


def _ensure(entry: Entry, *, by: StaffUser) -> tuple[Resource, bool]:
    """The resource with this slug, and whether it was created now: created and published if
    missing, else left as staff left it."""
    existing = db.session.scalar(db.select(Resource).where(Resource.slug == entry.slug))
    if existing is not None:
        return existing, False
    kind = ResourceKind.guide if entry.body else ResourceKind.link
    resource = resources.save_resource(None, resources.ResourceDetails(
        kind=kind, slug=entry.slug, title=entry.title, url=entry.url or "",
        publisher=entry.publisher, category=entry.category, tags=entry.tags,
        description=entry.description, staff_note=entry.staff_note,
        audience=entry.audience, body=entry.body,
    ), by=by)  # fmt: skip
    resources.publish(resource, by=by)
    return resource, True


def load_library(*, by: StaffUser) -> tuple[dict[str, Resource], set[str]]:
    """Every demo resource by slug, and the slugs created now. Safe to run again: existing ones
    are found by slug and kept as they are."""
    library, created = {}, set()
    for entry in (*CURRENT, GUIDE, *ARTICLE):
        library[entry.slug], new = _ensure(entry, by=by)
        if new:
            created.add(entry.slug)
            if entry.replaced_by:
                resources.supersede(library[entry.slug], library[entry.replaced_by], by=by)
    return library, created


def attach_to_edition(event: Event, library: dict[str, Resource], *, by: StaffUser) -> None:
    """Give a seminar edition its resources, unless it has some already (staff may have chosen):
    the article's list for the 2016 edition, today's resources for an upcoming one."""
    if attachments.staff_attachments(event).event_wide:
        return
    event_wide = EVENT_WIDE_PAST if event.slug == seminar.PAST_EDITION_SLUG else EVENT_WIDE_UPCOMING
    for slug in event_wide:
        attachments.attach_to_event(event, library[slug], by=by)
    items = {item.title: item for item in event.agenda_items}
    for title, slugs in BESIDE_TALKS.items():
        if (item := items.get(title)) is not None:
            for slug in slugs:
                attachments.attach_to_item(item, library[slug], by=by)


def load_resources(*, by: StaffUser) -> None:
    library, created = load_library(by=by)
    editions = db.session.scalars(
        db.select(Event).where(Event.slug.like("cybercrime-seminar-%")).order_by(Event.starts_at)
    )
    for event in editions:
        if seminar.EDITION_SLUG.fullmatch(event.slug):
            attach_to_edition(event, library, by=by)
    # Retired after the 2016 edition has it: a retired resource cannot be attached.
    for entry in ARTICLE:
        if entry.ended and entry.slug in created:
            resources.retire(library[entry.slug], by=by)
    load_check_history()


# What a check of the library might find: illustrative, written without asking any site (the
# demo fetches nothing), so that the link health page has something real to show a newcomer.
ILLUSTRATIVE_CHECKS = (
    LinkResult("http://www.cyberstreetwise.com/cyberessentials/", UNREACHABLE,
               final_url="http://www.cyberstreetwise.com/cyberessentials/",
               error="address not found: www.cyberstreetwise.com", elapsed_ms=41),
    LinkResult("http://www.gov.uk/government/publications/", REDIRECTED, 200,
               "https://www.gov.uk/government/publications",
               (Hop(301, "https://www.gov.uk/government/publications"),), elapsed_ms=212),
    LinkResult("http://www.nationalarchives.gov.uk/sme/", BROKEN, 404,
               "https://www.nationalarchives.gov.uk/sme/",
               (Hop(301, "https://www.nationalarchives.gov.uk/sme/"),), elapsed_ms=388),
    LinkResult("http://www.cesg.gov.uk/", REDIRECTED, 200, "https://www.ncsc.gov.uk/",
               (Hop(301, "https://www.cesg.gov.uk/"), Hop(301, "https://www.ncsc.gov.uk/")),
               elapsed_ms=295),
    LinkResult("https://www.actionfraud.police.uk/", REDIRECTED, 200,
               "https://www.reportfraud.police.uk/",
               (Hop(302, "https://www.reportfraud.police.uk/"),), elapsed_ms=264),
    *(
        LinkResult(url, OK, 200, url, elapsed_ms=150 + 20 * n)
        for n, url in enumerate((
            "https://www.ncsc.gov.uk/",
            "https://www.ncsc.gov.uk/cyberessentials/overview",
            "https://www.ncsc.gov.uk/collection/small-business-guide",
            "https://www.getsafeonline.org/",
        ))
    ),
)  # fmt: skip
CHECKS_DAYS_AGO = (14, 7)  # two weekly runs, clearly in the past


def load_check_history(now: datetime | None = None) -> None:
    """Record the illustrative checks as two past runs, through the same service a real run
    stores its results with. Only into a library no check has ever run on."""
    if db.session.scalar(db.select(LinkCheckRun.id).limit(1)) is not None:
        return
    today = (now or utcnow()).replace(hour=3, minute=0, second=0, microsecond=0)
    for days in CHECKS_DAYS_AGO:
        health.record_finished_run(
            list(ILLUSTRATIVE_CHECKS), at=today - timedelta(days=days), trigger="demo"
        )
