"""The `chamber` command: Flask's commands (run, db, shell) bound to the app, plus our own."""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import FlaskGroup, with_appcontext

from chamber.auth import services as staff
from chamber.auth.models import Role
from chamber.core.transactions import unit_of_work


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
            user = staff.create_staff(email, name, Role(role), password)
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


def register_commands(app: Flask) -> None:
    app.cli.add_command(create_staff_command)
    app.cli.add_command(worker_command)
    app.cli.add_command(send_test_email_command)
    app.cli.add_command(resources_group)
    app.cli.add_command(surveys_group)


main = FlaskGroup(
    create_app=_create_app,
    add_version_option=False,
    help="Chamber: run the site, the worker and the batch jobs.",
)
main.add_command(demo_command)
