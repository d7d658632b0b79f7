"""The seminar template: the questions a follow-up survey starts with, filled from the event's
agenda and resource pack, leaving out what the event cannot fill."""

from __future__ import annotations

from dataclasses import dataclass

from chamber.events.models import AgendaItem, Event
from chamber.extensions import db
from chamber.resources.models import AgendaItemResource, EventResource, Resource, ResourceStatus
from chamber.surveys.models import (
    MAX_CHOICE_LENGTH,
    MAX_CHOICES,
    RATED_AGENDA_KINDS,
    QuestionDetails,
    QuestionKind,
)


def rated_agenda_items(event_id: int) -> list[AgendaItem]:
    """The talks and panels a "rate each agenda item" question asks about, in agenda order."""
    return list(
        db.session.scalars(
            db.select(AgendaItem)
            .where(AgendaItem.event_id == event_id, AgendaItem.kind.in_(RATED_AGENDA_KINDS))
            .order_by(AgendaItem.starts_at, AgendaItem.position, AgendaItem.id)
        )
    )


def _session_labels(event: Event) -> list[str]:
    seen: list[str] = []
    for item in rated_agenda_items(event.id):
        speakers = ", ".join(s.name for s in item.speakers)
        label = f"{item.title} ({speakers})" if speakers else item.title
        label = label[:MAX_CHOICE_LENGTH]
        if label not in seen:
            seen.append(label)
    return seen[:MAX_CHOICES]


def _pack_titles(event: Event) -> list[str]:
    """The published resources in the event's pack: event-wide first, then those attached to its
    talks, each in the order staff chose."""
    event_wide = db.session.scalars(
        db.select(Resource.title)
        .join(EventResource, EventResource.resource_id == Resource.id)
        .where(EventResource.event_id == event.id, Resource.status == ResourceStatus.published)
        .order_by(EventResource.position, EventResource.id)
    ).all()
    per_talk = db.session.scalars(
        db.select(Resource.title)
        .join(AgendaItemResource, AgendaItemResource.resource_id == Resource.id)
        .join(AgendaItem, AgendaItem.id == AgendaItemResource.agenda_item_id)
        .where(AgendaItem.event_id == event.id, Resource.status == ResourceStatus.published)
        .order_by(
            AgendaItem.starts_at,
            AgendaItem.position,
            AgendaItem.id,
            AgendaItemResource.position,
            AgendaItemResource.id,
        )
    ).all()
    titles = (t.strip()[:MAX_CHOICE_LENGTH] for t in [*event_wide, *per_talk] if t.strip())
    return list(dict.fromkeys(titles))[: MAX_CHOICES - 1]


@dataclass(frozen=True)
class TemplateMaterial:
    """What the seminar template fills its questions from: the agenda's talks and panels (with
    their speakers), and the titles in the event's published resource pack."""

    sessions: list[str]
    resources: list[str]

    @property
    def left_out(self) -> list[str]:
        """The template's questions this event cannot fill, and why, in words for staff."""
        notes = []
        if not self.sessions:
            notes.append(
                "Questions about the sessions (“Which session was most useful to you?” or "
                "“How useful was each session?”): the agenda has no talks or panels yet. Once "
                "it has, you can add a “Rate each agenda item” question."
            )
        if not self.resources:
            notes.append(
                "“Which resources will you use?”: no published resources are attached to this "
                "event or its talks, so there is nothing to choose from, and the thanks page "
                "does not offer a resource pack. Attach resources to the event first, then add "
                "a multiple-choice question if you want to ask."
            )
        return notes


def template_material(event: Event) -> TemplateMaterial:
    return TemplateMaterial(sessions=_session_labels(event), resources=_pack_titles(event))


BREACH_QUESTION = "Did your business have a cyber breach or attack in the last 12 months?"
BREACH_HINT = "If you would rather not tell us, choose “Prefer not to say”."


def template_questions(event: Event) -> list[QuestionDetails]:
    """The seminar template: overall rating, most useful session, NPS, breaches, resources and
    next time. A question the event cannot fill (no talks, no resource pack) is left out."""
    material = template_material(event)
    questions = [
        QuestionDetails(
            QuestionKind.rating,
            "Overall, how would you rate the seminar?",
            help_text="1 is poor, 5 is excellent.",
            required=True,
        )
    ]
    if len(material.sessions) >= 2:
        questions.append(
            QuestionDetails(
                QuestionKind.single_choice,
                "Which session was most useful to you?",
                choices="\n".join(material.sessions),
            )
        )
    elif material.sessions:
        questions.append(
            QuestionDetails(
                QuestionKind.agenda_rating,
                "How useful was each session?",
                help_text="1 is not useful, 5 is very useful.",
            )
        )
    questions += [
        QuestionDetails(
            QuestionKind.nps,
            "How likely are you to recommend our seminars to a colleague or another business?",
            help_text="0 is not at all likely, 10 is extremely likely.",
            required=True,
        ),
        QuestionDetails(QuestionKind.yes_no, BREACH_QUESTION, help_text=BREACH_HINT),
    ]
    if material.resources:
        questions.append(
            QuestionDetails(
                QuestionKind.multiple_choice,
                "Which resources will you use?",
                help_text="Select all that apply.",
                choices="\n".join([*material.resources, "None of these"]),
            )
        )
    questions.append(
        QuestionDetails(
            QuestionKind.free_text,
            "What should we cover next time?",
            help_text="Topics, speakers or anything else you would like to hear about.",
        )
    )
    return questions
