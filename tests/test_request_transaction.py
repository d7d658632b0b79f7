"""One request, one transaction: committed after a view that succeeded, rolled back after one that
failed, in one place (`chamber.core.transactions`). Background work uses `unit_of_work`."""

from __future__ import annotations

import pytest
from flask import Response, abort, redirect

from chamber.core import transactions
from chamber.events.models import Speaker
from chamber.extensions import db
from chamber.registration.services import seats_locked


def speaker_names() -> list[str]:
    db.session.rollback()  # a fresh look at what was committed
    return sorted(db.session.scalars(db.select(Speaker.name)))


def add_speaker(name: str) -> None:
    db.session.add(Speaker(name=name, organisation="Octree"))
    db.session.flush()


@pytest.fixture
def routes(app):
    """Throwaway views that change a row and then end in each way a view can end."""

    def raises():
        add_speaker("Raised")
        raise RuntimeError("the view failed after changing rows")

    def refuses():
        add_speaker("Refused")
        return "not like that", 400

    def aborts():
        add_speaker("Aborted")
        abort(404)

    def redirects():
        add_speaker("Redirected")
        return redirect("/")

    def succeeds():
        add_speaker("Succeeded")
        return "done"

    def streams():
        add_speaker("Streamed")
        engine = db.engine

        def body():
            # The rows are committed before the body is produced: another connection sees them.
            with engine.connect() as other:
                yield ",".join(other.scalars(db.select(Speaker.name)))

        return Response(body(), mimetype="text/plain")

    for view in (raises, refuses, aborts, redirects, succeeds, streams):
        app.add_url_rule(f"/test/{view.__name__}", view.__name__, view)
    return app


def test_a_view_that_raises_after_changing_rows_leaves_nothing_behind(routes, client):
    with pytest.raises(RuntimeError):
        client.get("/test/raises")
    assert speaker_names() == []


def test_a_view_that_raises_is_a_500_page_and_leaves_nothing_behind(routes, client, app):
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = client.get("/test/raises")
    assert response.status_code == 500
    assert "Sorry, something went wrong" in response.text
    assert speaker_names() == []


def test_a_view_that_changes_rows_and_answers_400_leaves_nothing_behind(routes, client):
    response = client.get("/test/refuses")
    assert response.status_code == 400
    assert speaker_names() == []


def test_a_view_that_aborts_with_404_after_changing_rows_leaves_nothing_behind(routes, client):
    assert client.get("/test/aborts").status_code == 404
    assert speaker_names() == []


def test_a_page_or_a_redirect_commits_what_the_view_changed(routes, client):
    assert client.get("/test/succeeds").status_code == 200
    assert client.get("/test/redirects").status_code == 302
    assert speaker_names() == ["Redirected", "Succeeded"]


def test_a_streamed_response_is_committed_before_its_body_is_produced(routes, client):
    response = client.get("/test/streams")
    assert response.status_code == 200
    assert response.text == "Streamed"


def test_unit_of_work_commits_when_the_block_ends_and_rolls_back_when_it_raises(app):
    with transactions.unit_of_work():
        add_speaker("Kept")
    with pytest.raises(RuntimeError), transactions.unit_of_work():
        add_speaker("Lost")
        raise RuntimeError("the job failed")
    assert speaker_names() == ["Kept"]


def test_ending_the_reads_refuses_once_the_transaction_has_written(app):
    db.session.scalars(db.select(Speaker)).all()
    transactions.end_reads()  # only reads: fine
    db.session.add(Speaker(name="Pending", organisation=""))
    with pytest.raises(transactions.TransactionMisuse):
        transactions.end_reads()  # not flushed yet, but a write all the same
    db.session.flush()
    with pytest.raises(transactions.TransactionMisuse):
        transactions.end_reads()
    db.session.rollback()
    assert not transactions.has_written()
    db.session.execute(db.update(Speaker).values(name="x"))  # a bulk statement is a write too
    assert transactions.has_written()
    db.session.rollback()


def test_only_the_transaction_module_commits():
    """Issue 16's rule, kept: `commit()` is called in `core.transactions` (the request's end and
    `unit_of_work`) and nowhere else in the package, so no view or service can commit half-way."""
    import ast
    from pathlib import Path

    import chamber

    package = Path(chamber.__file__).parent
    committing = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package).as_posix()
        if relative.startswith("migrations/") or relative == "core/transactions.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "commit"
            ):
                committing.append(f"{relative}:{node.lineno}")
    assert committing == []
    # The scan sees what it is meant to: the transaction module's own commits.
    source = (package / "core" / "transactions.py").read_text(encoding="utf-8")
    assert source.count("db.session.commit()") == 2


def test_the_seat_lock_refuses_once_the_transaction_has_written(app, make_event):
    """`seats_locked` must be the transaction's first write (docs/architecture.md, "A request"):
    after another write it refuses, and nothing is locked or lost by the refusal."""
    event = make_event(capacity=5)
    db.session.commit()
    db.session.add(Speaker(name="Written first", organisation=""))
    db.session.flush()
    with pytest.raises(transactions.TransactionMisuse), seats_locked(event):
        pytest.fail("the block must not run")
    assert event.id not in transactions.state().get("seat_locks", set())
    db.session.rollback()

    with seats_locked(event) as locked:  # a fresh transaction: the lock is its first write
        assert locked is event
        assert event.id in transactions.state()["seat_locks"]
        db.session.add(Speaker(name="Written under the lock", organisation=""))
    db.session.commit()
    assert speaker_names() == ["Written under the lock"]
