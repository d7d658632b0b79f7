"""Consent from an import: the stated basis (wording and topics) recorded for the file's people,
or with a Consent column for those whose cell says yes; never over a withdrawal or an opt-out;
a second import changes nothing; on the staff page and the command line."""

from __future__ import annotations

import pytest

from chamber.core.transactions import unit_of_work
from chamber.extensions import db
from chamber.members import import_jobs
from chamber.members.import_models import ImportStatus, RowAction
from chamber.members.importing import ImportRefused
from chamber.members.marketing import Basis, statuses_by_topic
from chamber.members.models import Consent, Contact, MarketingTopic, TopicOptOut
from tests.support import csrf_token
from tests.test_directory_import import outcomes
from tests.test_directory_import_pages import INDEX, latest_job, upload

EVENTS, NEWSLETTER = MarketingTopic.events, MarketingTopic.newsletter
WORDING = "Ticked ‘Email me about events’ on the 2026 expo sign-up sheet"


def run(text: str, *, topics=(EVENTS,), wording=WORDING, dry_run=False, mapping=None):
    with unit_of_work():
        job = import_jobs.create_job("people.csv", text.encode())
        import_jobs.save_mapping(
            job, mapping or import_jobs.suggested_mapping(job), None,
            consent_wording=wording, consent_topics=list(topics),
        )  # fmt: skip
        import_jobs.start(job, dry_run=dry_run)
    return job


def consents() -> list[Consent]:
    return list(db.session.scalars(db.select(Consent).order_by(Consent.contact_id, Consent.id)))


def contact_id(email: str) -> int:
    return db.session.scalar(db.select(Contact.id).where(Contact.email == email))


FILE = "Name,Email\r\nAnn,ann@gmail.com\r\nBen,ben@example.com\r\n"


def test_a_stated_basis_records_consent_for_every_person_with_wording_source_and_time(app):
    job = run(FILE, topics=(EVENTS, NEWSLETTER))
    assert job.status == ImportStatus.done and job.created == 2
    found = consents()
    assert len(found) == 4
    assert {(c.purpose, c.source, c.wording, c.recorded_by) for c in found} == {
        (topic, "import", WORDING, "command line") for topic in ("events", "newsletter")
    }
    assert all(c.confirmed_at is not None and c.withdrawn_at is None for c in found)
    ann = statuses_by_topic([contact_id("ann@gmail.com")])[contact_id("ann@gmail.com")]
    assert ann[EVENTS].basis is Basis.consent and ann[NEWSLETTER].basis is Basis.consent
    assert ann[MarketingTopic.surveys].basis is Basis.no_basis
    assert "Consented on the import to “Ticked" in ann[EVENTS].reason


def test_importing_the_same_file_again_records_no_second_consent(app):
    run(FILE)
    again = run(FILE)
    assert again.unchanged == 2 and again.updated == 0
    assert len(consents()) == 2


def test_a_consent_column_records_it_only_for_those_whose_cell_says_yes(app):
    text = "Name,Email,Opted in\r\nAnn,ann@gmail.com,yes\r\nBen,ben@example.com,no\r\nCy,cy@example.com,\r\n"
    job = run(text)
    assert job.mapping == ["name", "email", "consent"]
    assert [c.contact_id for c in consents()] == [contact_id("ann@gmail.com")]


def test_a_consent_column_without_a_stated_basis_is_refused(app):
    text = "Name,Email,Consent\r\nAnn,ann@gmail.com,yes\r\n"
    with pytest.raises(ImportRefused, match="says who consented, not to what"):
        run(text, topics=(), wording="")


def test_a_row_that_consents_with_no_email_is_refused(app):
    text = "Organisation,Email,Consent,Size band\r\nOctree,,yes,small\r\n"
    job = run(text)
    assert job.refused == 1
    assert "consented but gives no email address" in outcomes(job)[2][1]


def test_an_import_never_overrides_a_withdrawal_or_an_opt_out(app):
    run(FILE, topics=(EVENTS,))
    ann, ben = contact_id("ann@gmail.com"), contact_id("ben@example.com")
    with unit_of_work():
        db.session.execute(
            db.update(Consent).where(Consent.contact_id == ann).values(withdrawn_at=db.func.now())
        )
        db.session.add(TopicOptOut(contact_id=ben, topic=NEWSLETTER))
    rows = outcomes(run(FILE, topics=(EVENTS, NEWSLETTER), dry_run=True))
    assert "Consent to events not recorded: ann@gmail.com withdrew it or opted out" in rows[2][1]
    assert "consent to newsletter recorded" in rows[2][1]
    assert "Consent to newsletter not recorded: ben@example.com" in rows[3][1]
    run(FILE, topics=(EVENTS, NEWSLETTER))
    by_contact = {(c.contact_id, c.purpose, c.withdrawn_at is None) for c in consents()}
    assert (ann, "events", True) not in by_contact
    assert (ben, "newsletter", True) not in by_contact


def test_a_dry_run_says_what_consent_it_would_record_and_writes_none(app):
    job = run(FILE, dry_run=True, topics=(EVENTS, NEWSLETTER))
    assert consents() == []
    assert outcomes(job)[3][0] == RowAction.create
    assert "consent to events, newsletter recorded" in outcomes(job)[3][1]
    run(FILE)  # events recorded; a dry run for both now would add the newsletter only
    again = outcomes(run(FILE, dry_run=True, topics=(EVENTS, NEWSLETTER)))
    assert again[2][0] == RowAction.update
    assert "consent to newsletter recorded" in again[2][1] and "events" not in again[2][1]


@pytest.mark.parametrize(
    ("topics", "wording", "message"),
    [
        ((EVENTS,), "", "Enter the wording"),
        ((), "They said yes", "Choose the topics"),
        ((EVENTS,), "x" * 1001, "at most 1,000 characters"),
        ((EVENTS,), "yes\x1b[31m", "not allowed"),
    ],
)
def test_a_stated_basis_that_is_incomplete_or_hostile_is_refused(app, topics, wording, message):
    with pytest.raises(ImportRefused, match=message):
        run(FILE, topics=topics, wording=wording)
    assert consents() == []


def test_the_page_records_the_stated_basis_with_the_staff_member(organiser_client):
    upload(organiser_client, FILE.encode())
    job = latest_job()
    page = organiser_client.get(f"{INDEX}{job.id}/columns")
    assert "Consent the file’s people gave (optional)" in page.text
    response = organiser_client.post(
        f"{INDEX}{job.id}/columns",
        data={
            "csrf_token": csrf_token(organiser_client, f"{INDEX}{job.id}/columns"),
            "columns-0": "name", "columns-1": "email", "default_size_band": "",
            "consent_topics": ["events", "surveys"], "consent_wording": WORDING, "run": "import",
        },
    )  # fmt: skip
    assert response.status_code == 302
    found = consents()
    assert {(c.purpose, c.recorded_by) for c in found} == {
        ("events", "org@example.com"),
        ("surveys", "org@example.com"),
    }
    assert len(found) == 4


def test_the_page_refuses_a_forged_topic(organiser_client):
    upload(organiser_client, FILE.encode())
    job = latest_job()
    response = organiser_client.post(
        f"{INDEX}{job.id}/columns",
        data={
            "csrf_token": csrf_token(organiser_client, f"{INDEX}{job.id}/columns"),
            "columns-0": "name", "columns-1": "email", "default_size_band": "",
            "consent_topics": "everything", "consent_wording": WORDING, "run": "import",
        },
    )  # fmt: skip
    assert response.status_code == 400
    assert consents() == []


def test_the_command_records_a_stated_basis(app, runner, tmp_path):
    path = tmp_path / "people.csv"
    path.write_text(FILE)
    result = runner.invoke(args=[
        "members", "import", str(path), "--consent-topic", "events", "--consent-topic",
        "newsletter", "--consent-wording", WORDING,
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(consents()) == 4
    refused = runner.invoke(args=["members", "import", str(path), "--consent-topic", "events"])
    assert refused.exit_code != 0 and "Enter the wording" in refused.output
