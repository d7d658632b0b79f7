"""The `chamber` command: Flask's commands (run, db, shell) bound to the app, plus our own."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import Flask
from flask.cli import FlaskGroup, with_appcontext

from chamber.auth import services as staff
from chamber.auth.models import Role
from chamber.core.transactions import unit_of_work
from chamber.members.models import MarketingTopic, SizeBand


def _create_app() -> Flask:
    from chamber import create_app
    from chamber.config import ConfigError

    try:
        return create_app()
    except ConfigError as error:  # a clear message, not a traceback
        click.echo(f"Error: {error}", err=True)
        sys.exit(2)


def _staff_details_problems(
    email: str, name: str, role: str, password: str | None = None
) -> list[str]:
    """What the web form's own checks say about these details; the password's are skipped while
    it has not been asked for yet."""
    from werkzeug.datastructures import MultiDict

    from chamber.auth.forms import StaffCreateForm

    data = {"email": email, "name": name, "role": role, "password": password or ""}
    form = StaffCreateForm(formdata=MultiDict(data), meta={"csrf": False})
    if form.validate():
        return []
    return [
        message
        for field_id, message in form.error_list
        if password is not None or field_id != form.password.id
    ]


def _refuse(problems: list[str]) -> None:
    if problems:
        raise click.ClickException("\n".join(problems))


def _read_password(password_stdin: bool) -> str:
    if password_stdin or not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    problem = staff.password_problem(password)
    if problem:
        raise click.ClickException(problem)
    return password


@click.command("create-staff")
@click.option("--email", prompt=True, help="The staff user's email address (their login).")
@click.option("--name", prompt=True, help="Their full name.")
@click.option(
    "--role",
    type=click.Choice([r.value for r in Role]),
    default=Role.admin.value,
    show_default=True,
    help="What they may do.",
)
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from standard input instead of prompting.",
)
@with_appcontext
def create_staff_command(email: str, name: str, role: str, password_stdin: bool) -> None:
    """Add a staff user. The password is prompted for, or read from standard input; never an argument."""
    _refuse(_staff_details_problems(email, name, role))  # before asking for a password
    password = _read_password(password_stdin)
    _refuse(_staff_details_problems(email, name, role, password))
    try:
        with unit_of_work():
            user = staff.create_staff(email, name, Role(role), password, by=None)
    except staff.StaffError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"Added {user.email} ({user.role.label}).")


@click.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--no-serve", is_flag=True, help="Set up and load the demo data, then exit.")
def demo_command(host: str, port: int, no_serve: bool) -> None:
    """Set up the SQLite database, load the demo seminar, print a staff login and serve the site."""
    import os

    from chamber import create_app
    from chamber.demo import load_demo

    # Links in emails and feeds point at the address the demo serves on, unless one is configured.
    overrides = {"DEMO": True}
    if not os.environ.get("CHAMBER_BASE_URL"):
        overrides["BASE_URL"] = f"http://{host}:{port}"
    app = create_app(overrides)
    # Every later command (`chamber worker`, `chamber routes` ...) reads the instance folder's
    # settings file: it gets the demo's key, database and address from there, unless the
    # environment gives them.
    from pathlib import Path

    from chamber.config import SETTINGS_FILE, write_demo_settings

    demo_settings = {
        "CHAMBER_SECRET_KEY": app.config["SECRET_KEY"],
        "CHAMBER_DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "CHAMBER_BASE_URL": app.config["BASE_URL"],
    }
    written = write_demo_settings(
        Path(app.instance_path),
        {name: value for name, value in demo_settings.items() if not os.environ.get(name)},
    )
    if written:
        click.echo(
            f"Settings:     {', '.join(written)} kept in {Path(app.instance_path) / SETTINGS_FILE}"
        )
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        with unit_of_work():
            login = load_demo(app)
    base = f"http://{host}:{port}"
    click.echo("")
    click.echo(f"Chamber demo: {base}/")
    click.echo(f"Staff login:  {base}/staff/login")
    click.echo(f"  email:      {login.email}")
    click.echo(f"  password:   {login.password}")
    for other in login.others:
        click.echo(f"  ({other.role}: {other.email} / {other.password})")
    click.echo(f"Database:     {app.config['SQLALCHEMY_DATABASE_URI']}")
    click.echo("")
    if not no_serve:
        import threading

        from chamber.worker import Worker, run_supervised

        worker = Worker(app, worker_id="demo", echo=lambda line: click.echo(f"[worker] {line}"))
        threading.Thread(
            target=run_supervised,
            args=(worker,),
            kwargs={"warn": lambda line: click.secho(f"[worker] {line}", fg="red", err=True)},
            name="chamber-worker",
            daemon=True,
        ).start()
        click.echo(
            f"Emails are written to {app.config.get('MAIL_FILE_PATH') or app.instance_path + '/mail'}"
        )
        # Not app.run(): Flask ignores that inside its own command line.
        from werkzeug.serving import run_simple

        run_simple(host, port, app, threaded=True, use_reloader=False, use_debugger=False)


@click.command("worker")
@click.option("--once", is_flag=True, help="Do one round (surveys, mail, links) now, then exit.")
@with_appcontext
def worker_command(once: bool) -> None:
    """Queue due surveys and reminders, deliver queued email and run due link checks, until stopped."""
    from flask import current_app

    from chamber.worker import Worker

    worker = Worker(current_app._get_current_object(), echo=click.echo)
    if once:
        report = worker.run_once()
        click.echo(
            f"Done: {report.sent} sent, {report.retrying} to retry, {report.failed} failed, "
            f"{report.suppressed} suppressed."
        )
        for error in report.errors[:20]:
            click.echo(f"  {error}", err=True)
        return
    worker.install_signal_handlers()
    worker.run()


@click.command("send-test-email")
@click.argument("address")
@with_appcontext
def send_test_email_command(address: str) -> None:
    """Queue a test email to ADDRESS; the worker delivers it with the configured backend."""
    import uuid

    from chamber.mail import services as mail

    with unit_of_work():
        mail.enqueue(
            key=f"test:{uuid.uuid4().hex}",
            to=address,
            subject="Chamber test message",
            template="test_message",
        )
    click.echo(f"Queued a test message to {address}. Run `chamber worker --once` to send it.")


@click.group("surveys")
def surveys_group() -> None:
    """Follow-up surveys."""


@surveys_group.command("send-due")
@with_appcontext
def surveys_send_due_command() -> None:
    """Queue the invitations of every survey due now, and every reminder due now."""
    from chamber.surveys.dispatch import send_due

    report = send_due(worker_id="command")
    for line in report.details:
        click.echo(f"  {line}")
    click.echo(
        f"Queued {report.invitations} invitation(s) for {report.surveys} survey(s) and "
        f"{report.reminders} reminder(s). Run `chamber worker --once` to send them."
    )


@click.group("resources")
def resources_group() -> None:
    """The resource library."""


@resources_group.command("check")
@with_appcontext
def check_links_command() -> None:
    """Check every published link now, with a progress bar, and list those needing attention."""
    import os
    import socket

    from chamber.resources import health

    try:
        run = health.start_run(f"command:{socket.gethostname()}:{os.getpid()}")
    except health.HealthError as error:
        raise click.ClickException(str(error)) from error
    shown = 0
    with click.progressbar(length=run.total, label="Checking links", show_pos=True) as bar:

        def progress(report: health.RunReport) -> None:
            nonlocal shown
            bar.update(report.checked - shown)
            shown = report.checked

        report = health.run_check(run, on_progress=progress)
    click.echo(report.summary())
    for title, result in report.problems:
        moved = f" -> {result.final_url}" if result.final_url != result.url else ""
        why = f" ({result.error})" if result.error else ""
        click.echo(
            f"  {result.state:<11} {result.status_code or '-':>3}  {title}: {result.url}{moved}{why}"
        )


@click.group("members")
def members_group() -> None:
    """The member directory."""


def _mapping_from_options(
    header: list[str], mapping: list[str], maps: tuple[str, ...]
) -> list[str]:
    """The automatic mapping with each --map COLUMN=FIELD applied: COLUMN is a heading (in any
    case and punctuation) or a column's number from 1; FIELD a field's name or label, or "ignore"."""
    from chamber.members.import_fields import FIELDS, heading_key

    fields = {heading_key(f.name): f.name for f in FIELDS} | {
        heading_key(f.label): f.name for f in FIELDS
    }
    mapping = list(mapping)
    for option in maps:
        column, equals, field = option.partition("=")
        if not equals:
            raise click.BadParameter(f"“{option}” is not COLUMN=FIELD.", param_hint="--map")
        keys = [heading_key(heading) for heading in header]
        if column.strip().isdigit() and 1 <= int(column) <= len(header):
            index = int(column) - 1
        elif heading_key(column) in keys:
            index = keys.index(heading_key(column))
        else:
            raise click.BadParameter(
                f"The file has no column “{column}”; its columns are: {', '.join(header)}.",
                param_hint="--map",
            )
        if heading_key(field) in ("ignore", ""):
            mapping[index] = ""
        elif heading_key(field) in fields:
            chosen = fields[heading_key(field)]
            mapping = ["" if name == chosen else name for name in mapping]  # one column each
            mapping[index] = chosen
        else:
            names = ", ".join(f.name for f in FIELDS)
            raise click.BadParameter(
                f"“{field}” is not a field; the fields are: {names} (or ignore).",
                param_hint="--map",
            )
    return mapping


@members_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--map",
    "maps",
    multiple=True,
    metavar="COLUMN=FIELD",
    help="Put a column (its heading, or its number from 1) into a field, or 'ignore' it; "
    "columns whose heading names a field map themselves.",
)
@click.option("--dry-run", is_flag=True, help="Say what would happen to each row; write nothing.")
@click.option(
    "--size-band",
    type=click.Choice([band.value for band in SizeBand]),
    help="The size band of a new business whose row has none (otherwise such rows are refused).",
)
@click.option(
    "--consent-topic",
    "consent_topics",
    multiple=True,
    type=click.Choice([topic.value for topic in MarketingTopic]),
    help="A topic the file's people consented to hear about (repeatable); with --consent-wording.",
)
@click.option(
    "--consent-wording",
    default="",
    metavar="TEXT",
    help="What the file's people agreed to, in the words they were given: recorded as their "
    "consent (source 'import'), or, with a Consent column, for those whose cell says yes.",
)
@with_appcontext
def import_members_command(
    file: Path,
    maps: tuple[str, ...],
    dry_run: bool,
    size_band: str | None,
    consent_topics: tuple[str, ...],
    consent_wording: str,
) -> None:
    """Import businesses and contacts from a CSV FILE, as the staff page does, with a progress bar."""
    import os
    import socket

    from chamber.members import import_jobs
    from chamber.members.import_models import MAX_FILE_BYTES, ImportStatus
    from chamber.members.importing import ImportRefused

    if file.stat().st_size > MAX_FILE_BYTES:
        raise click.ClickException(
            f"{file.name} is larger than {MAX_FILE_BYTES // 1024 // 1024} MB, the most that can "
            "be imported at once. Split it into smaller files."
        )
    try:
        with unit_of_work():
            job = import_jobs.create_job(file.name, file.read_bytes())
            mapping = _mapping_from_options(job.header, import_jobs.suggested_mapping(job), maps)
            import_jobs.save_mapping(
                job,
                mapping,
                SizeBand(size_band) if size_band else None,
                consent_wording=consent_wording,
                consent_topics=[MarketingTopic(topic) for topic in consent_topics],
            )
            import_jobs.start(job, dry_run=dry_run, in_request=False)
            job_id, total = job.id, job.rows_total
            click.echo(
                f"{file.name}: {total:,} row(s), {import_jobs.sheet_format(job).description}."
            )
            for heading, name in zip(job.header, mapping, strict=True):
                click.echo(f"  {heading or '(no heading)'} -> {name or 'ignored'}")
    except ImportRefused as refused:
        raise click.ClickException(refused.message) from refused
    claim = import_jobs.claim(job_id, f"command:{socket.gethostname()}:{os.getpid()}")
    if claim is None:
        raise click.ClickException("A worker took this import first; see the staff page.")
    label = "Checking rows" if dry_run else "Importing rows"
    done = 0
    with click.progressbar(length=total, label=label, show_pos=True) as bar:

        def progress(job) -> None:
            nonlocal done
            bar.update(job.rows_done - done)
            done = job.rows_done

        try:
            job = import_jobs.run_claimed(job_id, claim, on_progress=progress)
        except Exception as error:
            raise click.ClickException(f"The import stopped: {error}") from error
    verbs = ("would be created", "would be updated", "left alone") if dry_run else (
        "created", "updated", "unchanged")  # fmt: skip
    click.echo(
        f"{'Dry run, nothing written' if dry_run else 'Done'}: {job.created:,} {verbs[0]}, "
        f"{job.updated:,} {verbs[1]}, {job.unchanged:,} {verbs[2]}, {job.refused:,} refused."
    )
    for shown, row in enumerate(import_jobs.refused_rows(job)):
        if shown == 50:
            click.echo(f"  ... and {job.refused - shown:,} more: the staff page has the report.")
            break
        click.echo(f"  row {row.row_number}: {row.detail}")
    if job.status != ImportStatus.done:
        raise click.ClickException(f"The import ended {job.status.label.lower()}.")


@click.group("privacy")
def privacy_group() -> None:
    """Retention of personal data (docs/privacy.md)."""


@privacy_group.command("run")
@click.option("--dry-run", is_flag=True, help="Count what is due; change nothing.")
@with_appcontext
def privacy_run_command(dry_run: bool) -> None:
    """Anonymise every kind of personal data whose retention has run out, with a progress bar."""
    from chamber.core.times import utcnow
    from chamber.privacy import retention

    now = utcnow()
    with unit_of_work():
        due = retention.due_counts(now)
    for item in due:
        kept = item.kept_for or "kept"
        click.echo(f"  {item.kind.label} ({kept}): {item.count:,} due")
    total = sum(item.count for item in due)
    done = 0
    with click.progressbar(
        length=total, label="Counting" if dry_run else "Anonymising", show_pos=True
    ) as bar:

        def progress(report: retention.RetentionReport) -> None:
            nonlocal done
            bar.update(min(report.done, total) - done)
            done = min(report.done, total)

        report = retention.run_retention(
            now, dry_run=dry_run, trigger="command", on_progress=progress
        )
    assert report is not None  # a run asked for by name is never skipped
    click.echo(report.summary())


@click.group("campaigns")
def campaigns_group() -> None:
    """Email campaigns: list them, start a scheduled one now, follow one that is sending."""


def _campaign_or_fail(campaign_id: int):  # type: ignore[no-untyped-def]
    from chamber.campaigns import services as campaigns

    campaign = campaigns.find_campaign(campaign_id)
    if campaign is None:
        raise click.ClickException(f"There is no campaign {campaign_id}.")
    return campaign


def _when(moment, zone: str) -> str:  # type: ignore[no-untyped-def]
    from chamber.core.times import utc_to_local

    return f"{utc_to_local(moment, zone):%Y-%m-%d %H:%M %Z}" if moment else "-"


def _plain(text: str) -> str:
    """Typed text for a terminal: one line, without characters that are not printable (a
    bidirectional override or an escape would rearrange or restyle what follows)."""
    return "".join(ch for ch in " ".join(text.split()) if ch.isprintable())


def _progress_line(campaign_id: int) -> str:
    from chamber.campaigns import queries

    found = queries.progress(campaign_id)
    return (
        f"{found.queued:,} queued: {found.sent:,} sent, {found.waiting:,} waiting, "
        f"{found.failed:,} failed, {found.withheld:,} withheld, {found.cancelled:,} cancelled; "
        f"{found.left_out:,} left out"
    )


@campaigns_group.command("list")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(["draft", "scheduled", "sending", "paused", "sent", "cancelled"]),
    help="Only campaigns with this status (repeatable).",
)
@with_appcontext
def list_campaigns_command(statuses: tuple[str, ...]) -> None:
    """Every campaign, newest first: its id, status, subject, segment, and when it is due, began
    or ended."""
    from chamber.campaigns import queries
    from chamber.extensions import db

    shown = 0
    for campaign in db.session.scalars(queries.campaigns_newest_first()):
        if statuses and campaign.status.value not in statuses:
            continue
        shown += 1
        zone = campaign.scheduled_zone
        if campaign.status.value == "scheduled":
            when = f"due {_when(campaign.scheduled_for, zone)}"
        elif campaign.finished_at:
            when = f"ended {_when(campaign.finished_at, zone)}"
        elif campaign.started_at:
            when = f"began {_when(campaign.started_at, zone)}"
        else:
            when = "not sent"
        segment = _plain(campaign.segment.name) if campaign.segment else "no segment"
        subject = _plain(campaign.subject)
        click.echo(f"{campaign.id:>5}  {campaign.status.label:<9}  {subject[:60]}")
        click.echo(f"       to “{segment}” ({campaign.topic.value}), {when}")
    if not shown:
        click.echo("No campaigns.")


@campaigns_group.command("send")
@click.argument("campaign_id", type=int)
@click.option(
    "--queue/--no-queue",
    default=True,
    show_default=True,
    help="Queue its recipients now (the worker delivers them), or leave that to the worker.",
)
@with_appcontext
def send_campaign_command(campaign_id: int, queue: bool) -> None:
    """Start a scheduled campaign now instead of at its time, and queue its recipients."""
    from chamber.campaigns import sending
    from chamber.campaigns import services as campaigns

    try:
        with unit_of_work():
            campaigns.start_scheduled_now(_campaign_or_fail(campaign_id))
    except campaigns.CampaignRefused as refused:
        raise click.ClickException(refused.message) from refused
    click.echo(f"Campaign {campaign_id} is sending.")
    if not queue:
        click.echo("The worker will queue its recipients and deliver them.")
        return
    queued = left_out = 0
    while (done := sending.queue_chunk(campaign_id)) is not None:
        queued, left_out = queued + done[0], left_out + done[1]
        click.echo(f"  {queued:,} queued, {left_out:,} left out so far")
    click.echo(
        f"Queued {queued:,} message(s), {left_out:,} left out by the marketing rules; the "
        "worker (chamber worker) delivers them."
    )


@campaigns_group.command("progress")
@click.argument("campaign_id", type=int)
@click.option(
    "--follow",
    is_flag=True,
    help="Print the progress every few seconds until the campaign stops sending.",
)
@click.option(
    "--every", default=5.0, show_default=True, help="Seconds between lines with --follow."
)
@with_appcontext
def campaign_progress_command(campaign_id: int, follow: bool, every: float) -> None:
    """How far a campaign has got: queued, sent, waiting, failed, withheld, left out."""
    import time

    from chamber.extensions import db

    campaign = _campaign_or_fail(campaign_id)
    click.echo(f"{campaign.id}: {_plain(campaign.subject)}")
    while True:
        db.session.refresh(campaign)
        status = campaign.status
        click.echo(f"{status.label}: {_progress_line(campaign_id)}")
        db.session.rollback()  # the next look reads afresh
        if not follow or status.value not in ("sending", "paused"):
            return
        time.sleep(max(every, 0.5))


def register_commands(app: Flask) -> None:
    app.cli.add_command(create_staff_command)
    app.cli.add_command(worker_command)
    app.cli.add_command(send_test_email_command)
    app.cli.add_command(resources_group)
    app.cli.add_command(surveys_group)
    app.cli.add_command(members_group)
    app.cli.add_command(privacy_group)

    app.cli.add_command(campaigns_group)


main = FlaskGroup(
    create_app=_create_app,
    add_version_option=False,
    help="Chamber: run the site, the worker and the batch jobs.",
)
main.add_command(demo_command)
