"""The demo's follow-up survey: the 2016 seminar's, sent the morning after to everyone checked in,
with about forty answers and anonymous results, as the seminar template makes them. Its breach
question gives the article's figures when broken down by business size: about 74% of SMEs and 93%
of large businesses had a breach in the last year."""

from __future__ import annotations

import random
from datetime import datetime, time, timedelta

from chamber.core.times import local_to_utc
from chamber.events.models import AgendaItem, AgendaKind, Event
from chamber.extensions import db
from chamber.members.models import SizeBand
from chamber.registration.models import Delegate, DelegateStatus
from chamber.surveys.models import (
    YES_NO_CHOICES,
    Answer,
    Invitation,
    Question,
    QuestionKind,
    Recipients,
    Response,
    Survey,
    SurveyStatus,
)
from chamber.surveys.template import BREACH_HINT, BREACH_QUESTION

TITLE = "How was the cybercrime seminar?"
INTRO = (
    "Thank you for coming to our cybercrime seminar at the Holiday Inn Stevenage. Seven questions, "
    "two minutes: your answers shape the next one."
)
RESOURCES = (
    "The NCSC Small Business Guide",
    "Cyber Essentials certification",
    "Reporting fraud and cybercrime to Action Fraud",
    "The Audit, Plan, Execute, Monitor, Repeat plan",
    "Staff awareness training",
    "None of these",
)
NEXT_TIME = [
    "Practical phishing examples: what the emails actually look like.",
    "A hands-on session on setting up two-factor authentication for the whole team.",
    "More on Cyber Essentials: how long certification takes and what it costs a small firm.",
    "Ransomware: what to do in the first hour.",
    "How to write an incident response plan for a business of ten people.",
    "GDPR and reporting a breach to the ICO.",
    "Securing home working and personal phones.",
    "A case study from a local business that was attacked and recovered.",
    "Backups: what 'good' looks like and how to test them.",
    "Invoice fraud and fake supplier bank details; it nearly happened to us.",
    "Cloud services (Microsoft 365, Google) and how to lock them down.",
    "Less on statistics, more practical steps we can take on Monday morning.",
    "How to train staff without boring them.",
    "Password managers: which ones, and how to roll one out.",
    "Supply chain risk: what to ask our suppliers.",
    "Cyber insurance in more depth, with real claims.",
    "Social media policy for staff.",
    "A session for very small businesses and sole traders.",
    "Card payments and PCI rules for shops and restaurants.",
    "Could the police say more about how to report and what happens next?",
    "Longer networking time, please!",
    "A follow-up workshop to write our security plan there and then.",
    "What to check before we pay for a penetration test.",
    "Protecting the website and online shop itself, not just email.",
    "How do we know if we have already been breached?",
    "A speaker from the National Cyber Security Centre.",
    "Keeping customer data safe on laptops that leave the office.",
    "Apprentices and young staff: social engineering aimed at them.",
    "An update in a year's time on what attacks have changed.",
    "Wi-Fi for visitors and customers: doing it safely.",
    "More time for questions after each talk.",
    "Cyber security for charities and volunteers.",
]
RESPONSES = 41  # 27 SMEs (20 breached: 74%) and 14 large businesses
LARGE_RESPONSES = 14  # 13 of them breached: 93%
SME_BREACHES = 0.74
LARGE_BREACHES = 0.93


def load_survey(event: Event, *, seed: int) -> Survey | None:
    """The past edition's sent survey and its answers; nothing if the event has one already."""
    if db.session.scalar(db.select(Survey.id).where(Survey.event_id == event.id)):
        return None
    rng = random.Random(seed)
    talks = list(
        db.session.scalars(
            db.select(AgendaItem)
            .where(
                AgendaItem.event_id == event.id,
                AgendaItem.kind.in_((AgendaKind.talk, AgendaKind.panel)),
            )
            .order_by(AgendaItem.starts_at, AgendaItem.position)
        )
    )
    sent_at = local_to_utc(
        datetime.combine(event.local_end.date() + timedelta(days=1), time(10)), event.timezone
    )
    survey = Survey(
        event_id=event.id,
        title=TITLE,
        intro=INTRO,
        status=SurveyStatus.sent,
        recipients=Recipients.checked_in,
        send_at=sent_at,
        sent_at=sent_at,
        reminder_enabled=True,
        reminder_after_days=4,
        reminders_sent_at=sent_at + timedelta(days=4),
        closes_at=sent_at + timedelta(days=14),
        anonymous=True,  # the breach question is sensitive: totals and groups of 5+ only
    )
    sessions = [_session_label(item) for item in talks]
    questions = [
        Question(kind=QuestionKind.rating, text="Overall, how would you rate the seminar?",
                 help_text="1 is poor, 5 is excellent.", required=True),
        Question(kind=QuestionKind.single_choice, text="Which session was most useful to you?",
                 choices="\n".join(sessions)),
        Question(kind=QuestionKind.agenda_rating, text="How useful was each talk?",
                 help_text="1 is not useful, 5 is very useful."),
        Question(kind=QuestionKind.nps, text="How likely are you to recommend our seminars to a "
                 "colleague or another business?",
                 help_text="0 is not at all likely, 10 is extremely likely.", required=True),
        Question(kind=QuestionKind.yes_no, text=BREACH_QUESTION, help_text=BREACH_HINT,
                 choices="\n".join(YES_NO_CHOICES)),
        Question(kind=QuestionKind.multiple_choice, text="Which resources will you use?",
                 help_text="Select all that apply.", choices="\n".join(RESOURCES)),
        Question(kind=QuestionKind.free_text, text="What should we cover next time?",
                 help_text="Topics, speakers or anything else you would like to hear about."),
    ]  # fmt: skip
    for position, question in enumerate(questions):
        question.position = position
        survey.questions.append(question)
    db.session.add(survey)
    db.session.flush()

    delegates = list(
        db.session.scalars(
            db.select(Delegate)
            .where(
                Delegate.event_id == event.id,
                Delegate.status == DelegateStatus.confirmed,
                Delegate.checked_in_at.is_not(None),
            )
            .order_by(Delegate.id)
        )
    )
    invitations = {
        delegate.id: Invitation(
            survey_id=survey.id,
            delegate_id=delegate.id,
            email=delegate.email_normalised,
            invited_at=sent_at,
        )  # fmt: skip
        for delegate in delegates
    }
    db.session.add_all(invitations.values())
    db.session.flush()

    respondents = _respondents(rng, delegates)
    breaches = _breach_answers(rng, respondents)
    reminder_at = survey.reminders_sent_at
    ideas = rng.sample(NEXT_TIME, len(NEXT_TIME))
    for delegate in respondents:
        organisation = delegate.booking.organisation
        invitation = invitations[delegate.id]
        submitted = _answer_time(rng, sent_at)
        invitation.responded_at = submitted
        response = Response(
            survey_id=survey.id, invitation_id=invitation.id, submitted_at=submitted,
            size_band=organisation.size_band, sector=organisation.sector,
            is_member=organisation.is_member,
        )  # fmt: skip
        response.answers = _answers(rng, questions, talks, sessions, breaches[delegate.id], ideas)
        db.session.add(response)
    for invitation in invitations.values():
        if invitation.responded_at is None or invitation.responded_at > reminder_at:
            invitation.reminded_at = reminder_at
    db.session.flush()
    return survey


def _session_label(item: AgendaItem) -> str:
    speakers = ", ".join(s.name for s in item.speakers)
    return f"{item.title} ({speakers})" if speakers else item.title


def _respondents(rng: random.Random, delegates: list[Delegate]) -> list[Delegate]:
    """About forty of those who came: one person per small business, and the large employers
    (one each, then colleagues) well represented, as they tend to answer surveys."""
    by_business: dict[int, Delegate] = {}
    for delegate in delegates:
        by_business.setdefault(delegate.booking.organisation_id, delegate)
    large = [d for d in by_business.values() if d.booking.organisation.size_band is SizeBand.large]
    others = [
        d for d in by_business.values() if d.booking.organisation.size_band is not SizeBand.large
    ]
    large_people = [d for d in delegates if d.booking.organisation.size_band is SizeBand.large]
    # One per large business first, then their colleagues, to reach LARGE_RESPONSES.
    chosen_large = large + [d for d in large_people if d not in large]
    chosen_large = chosen_large[:LARGE_RESPONSES]
    smes = rng.sample(others, k=min(len(others), RESPONSES - len(chosen_large)))
    return sorted(chosen_large + smes, key=lambda d: d.id)


def _breach_answers(rng: random.Random, respondents: list[Delegate]) -> dict[int, str]:
    """Yes for 74% of SMEs and 93% of large businesses; the rest mostly No."""
    answers: dict[int, str] = {}
    for is_large, share in ((False, SME_BREACHES), (True, LARGE_BREACHES)):
        group = [
            d for d in respondents
            if (d.booking.organisation.size_band is SizeBand.large) == is_large
        ]  # fmt: skip
        yes = round(share * len(group))
        rest = len(group) - yes
        said = ["Yes"] * yes + ["Prefer not to say"] * (rest // 3) + ["No"] * (rest - rest // 3)
        rng.shuffle(said)
        answers.update({d.id: answer for d, answer in zip(group, said, strict=True)})
    return answers


def _answer_time(rng: random.Random, sent_at: datetime) -> datetime:
    """Most answer the day the survey arrives, some over the next days, a few after the reminder
    on day four."""
    day = rng.choices([0, 1, 2, 3, 4, 5, 6], weights=[45, 18, 8, 4, 16, 6, 3])[0]
    return sent_at + timedelta(days=day, minutes=rng.randint(5, 11 * 60))


def _answers(
    rng: random.Random,
    questions: list[Question],
    talks: list[AgendaItem],
    sessions: list[str],
    breach: str,
    ideas: list[str],
) -> list[Answer]:
    overall, useful, each_talk, recommend, breached, resources, next_time = questions
    answers = [
        Answer(question_id=overall.id, number=rng.choices([2, 3, 4, 5], weights=[2, 7, 18, 13])[0]),
        Answer(
            question_id=recommend.id,
            number=rng.choices(range(11), weights=[0, 0, 1, 1, 1, 2, 3, 6, 8, 9, 9])[0],
        ),
        Answer(question_id=breached.id, choice=breach),
    ]
    if sessions and rng.random() < 0.95:
        weights = [3, 5, 9, 6, 4][: len(sessions)] + [4] * max(0, len(sessions) - 5)
        answers.append(Answer(question_id=useful.id, choice=rng.choices(sessions, weights)[0]))
    for n, talk in enumerate(talks):
        if rng.random() < 0.9:
            base = [3.6, 4.0, 4.5, 4.2, 3.8][n % 5]
            score = min(5, max(1, round(rng.gauss(base, 0.8))))
            answers.append(Answer(question_id=each_talk.id, agenda_item_id=talk.id, number=score))
    picked = [r for r, chance in zip(RESOURCES[:-1], (0.5, 0.55, 0.35, 0.45, 0.3), strict=True)
              if rng.random() < chance]  # fmt: skip
    if not picked and rng.random() < 0.5:
        picked = [RESOURCES[-1]]
    answers.extend(Answer(question_id=resources.id, choice=choice) for choice in picked)
    if rng.random() < 0.6:
        idea = ideas.pop() if ideas else rng.choice(NEXT_TIME)
        answers.append(Answer(question_id=next_time.id, text=idea))
    return answers
