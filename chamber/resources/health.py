"""Link health: runs the checker over every published link and records what it found, the
schedule staff set, and the queue of runs the worker takes from.

Nothing here fetches anything during a page request: a page may only queue a run
(`queue_check`); `chamber resources check` and the worker do the fetching (`run_check`). Running
is background work, so `run_check` commits as it goes (progress every few results, for the page
and the progress bar), as the mail delivery does. One run at a time: a run is held by a worker's
lease, and every start takes the schedule row's lock first (FOR UPDATE on PostgreSQL).
"""

from __future__ import annotations

import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, func, or_, update

from chamber.core.dialects import insert_or_skip
from chamber.core.errors import Refusal
from chamber.core.times import utcnow
from chamber.core.transactions import unit_of_work
from chamber.extensions import db
from chamber.resources import checker
from chamber.resources.models import (
    LinkCheck,
    LinkCheckRun,
    LinkCheckSchedule,
    LinkState,
    Resource,
    ResourceKind,
    ResourceStatus,
)

SCHEDULE_ID = 1  # the schedule is one row
DEFAULT_INTERVAL_DAYS = 7
HISTORY_KEPT = 10  # checks kept per resource
PROGRESS_EVERY = 10  # results between progress commits...
PROGRESS_SECONDS = 1.0  # ...or this long, whichever comes first
LEASE = timedelta(minutes=5)  # renewed at every progress commit
URL_LENGTH = 2000  # Resource.url, LinkCheck.final_url
OFFLINE_MESSAGE = "The checker could not reach the internet; link states were kept"
OFFLINE_RETRY = timedelta(hours=1)  # a scheduled check that found no network tries again then

ATTENTION_STATES = [LinkState.broken, LinkState.unreachable, LinkState.redirected]


class HealthError(Refusal):
    """A request staff can make by mistake (e.g. accepting a temporary redirect)."""


def published_links():
    return db.select(Resource).where(
        Resource.kind == ResourceKind.link,
        Resource.status == ResourceStatus.published,
        Resource.url.is_not(None),
        Resource.url != "",
    )


def checker_options() -> dict:
    config = current_app.config
    return {
        "concurrency": int(config["LINKCHECK_CONCURRENCY"]),
        "per_host": int(config["LINKCHECK_PER_HOST"]),
        "timeout": float(config["LINKCHECK_TIMEOUT"]),
        "allow_private": bool(config["LINKCHECK_ALLOW_PRIVATE"]),
        "user_agent": f"{checker.DEFAULT_USER_AGENT} (+{config['BASE_URL']})",
    }


# --- the schedule and the queue -------------------------------------------------------------------


def current_schedule() -> LinkCheckSchedule:
    """The schedule, or (before anyone has saved one) the defaults, unsaved: reading writes
    nothing."""
    return db.session.get(LinkCheckSchedule, SCHEDULE_ID) or LinkCheckSchedule(
        id=SCHEDULE_ID, enabled=True, interval_days=DEFAULT_INTERVAL_DAYS, next_run_at=None
    )


def _locked_schedule(now: datetime) -> LinkCheckSchedule:
    """The schedule row, locked until the transaction ends: the one lock every start of a run
    takes, so two workers (or a worker and the command) never start runs side by side."""
    locked = (
        db.select(LinkCheckSchedule)
        .where(LinkCheckSchedule.id == SCHEDULE_ID)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    schedule = db.session.scalar(locked)
    if schedule is None:
        # The first check is due one interval after the worker first looks; "Check now" and
        # `chamber resources check` run one at once. Two first uses at once both get here: the
        # loser's insert waits for the winner's and does nothing, and then both lock the row.
        db.session.execute(
            insert_or_skip(LinkCheckSchedule)
            .values(
                id=SCHEDULE_ID,
                enabled=True,
                interval_days=DEFAULT_INTERVAL_DAYS,
                next_run_at=now + timedelta(days=DEFAULT_INTERVAL_DAYS),
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["id"])
        )
        schedule = db.session.scalar(locked)
    return schedule


def save_schedule(*, enabled: bool, interval_days: int) -> LinkCheckSchedule:
    if not 1 <= interval_days <= 90:
        raise HealthError("The interval must be between 1 and 90 days.")
    now = utcnow()
    schedule = _locked_schedule(now)
    schedule.enabled = enabled
    schedule.interval_days = interval_days
    if enabled:
        last = latest_run(finished=True)
        since = last.started_at if last else now
        schedule.next_run_at = max(since + timedelta(days=interval_days), now)
    else:
        schedule.next_run_at = None
    db.session.flush()
    return schedule


def unfinished_run() -> LinkCheckRun | None:
    """The run waiting for a worker, or in a worker's hands (or abandoned by one)."""
    return db.session.scalar(
        db.select(LinkCheckRun)
        .where(LinkCheckRun.finished_at.is_(None))
        .order_by(LinkCheckRun.id)
        .limit(1)
        .execution_options(populate_existing=True)  # as committed now, not as first read
    )


def latest_run(*, finished: bool = False) -> LinkCheckRun | None:
    query = db.select(LinkCheckRun).order_by(LinkCheckRun.id.desc()).limit(1)
    if finished:
        query = query.where(LinkCheckRun.finished_at.is_not(None))
    return db.session.scalar(query)


def queue_check(*, trigger: str = "staff") -> LinkCheckRun:
    """Ask the worker to check every link now. Fetches nothing: the worker takes the run."""
    _locked_schedule(utcnow())
    if unfinished_run() is not None:
        raise HealthError("A check is already waiting or running; its progress is shown below.")
    run = LinkCheckRun(trigger=trigger, total=_count_links())
    db.session.add(run)
    db.session.flush()
    return run


def _count_links() -> int:
    return db.session.scalar(db.select(func.count()).select_from(published_links().subquery()))


def _claim(worker_id: str, now: datetime, *, new_trigger: str | None) -> LinkCheckRun | None:
    """Take the unfinished run (queued, or abandoned when its lease ran out), or start a new one
    if `new_trigger` is given; None when another worker holds a run, or nothing is to be done.

    Each step is a conditional UPDATE checked by its row count, so it holds where the lock on the
    schedule does not (SQLite has no FOR UPDATE): two workers never both take the same run or
    the same scheduled slot."""
    schedule = _locked_schedule(now)
    run = unfinished_run()
    if run is not None and run.claimed_by and run.lease_until and run.lease_until >= now:
        return None  # another worker is on it
    slot = _take_due_slot(schedule, now)
    claim = {
        "claimed_by": f"{worker_id}:{uuid.uuid4().hex[:12]}"[:64],
        "lease_until": now + LEASE,
        "started_at": now,
        "total": _count_links(),
        "checked": 0,
        "problems": 0,
    }
    if run is None:
        if new_trigger is None or (new_trigger == "schedule" and not slot):
            return None
        run = LinkCheckRun(trigger=new_trigger, **claim)
        db.session.add(run)
        db.session.flush()
        return run
    taken = db.session.execute(
        update(LinkCheckRun)
        .where(
            LinkCheckRun.id == run.id,
            LinkCheckRun.finished_at.is_(None),
            or_(LinkCheckRun.claimed_by.is_(None), LinkCheckRun.lease_until < now),
        )
        .values(**claim)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not taken:
        return None
    db.session.expire(run)
    return run


def _take_due_slot(schedule: LinkCheckSchedule, now: datetime) -> bool:
    """Move a due schedule on by its interval; True for the one caller that did."""
    if not (schedule.enabled and schedule.next_run_at and schedule.next_run_at <= now):
        return False
    moved = db.session.execute(
        update(LinkCheckSchedule)
        .where(
            LinkCheckSchedule.id == schedule.id,
            LinkCheckSchedule.enabled.is_(True),
            LinkCheckSchedule.next_run_at <= now,
        )
        .values(next_run_at=now + timedelta(days=schedule.interval_days))
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.expire(schedule)
    return bool(moved)


def due_run(worker_id: str, now: datetime | None = None) -> LinkCheckRun | None:
    """For the worker: the run to do now (one staff queued, one abandoned by a dead worker, or a
    new one when the schedule is due), claimed under a lease and committed; otherwise None."""
    now = now or utcnow()
    with unit_of_work():
        schedule = db.session.get(LinkCheckSchedule, SCHEDULE_ID)
        waiting = unfinished_run()
        scheduled = bool(
            schedule and schedule.enabled and schedule.next_run_at and schedule.next_run_at <= now
        )
        if schedule is not None and waiting is None and not scheduled:
            return None  # the common case: one cheap read, no lock
        return _claim(worker_id, now, new_trigger="schedule" if scheduled else None)


def start_run(worker_id: str, *, trigger: str = "command") -> LinkCheckRun:
    """For the command line: claim the queued run or start one, now; refuse if one is running."""
    with unit_of_work():
        run = _claim(worker_id, utcnow(), new_trigger=trigger)
        if run is None:
            raise HealthError("Another check is running now; try again when it has finished.")
    return run


# --- running --------------------------------------------------------------------------------------


@dataclass
class RunReport:
    run_id: int
    total: int
    checked: int = 0
    states: Counter = field(default_factory=Counter)
    problems: list[tuple[str, checker.LinkResult]] = field(default_factory=list)  # (title, result)
    stopped: bool = False  # handed back unfinished (worker stopping, or the lease was lost)
    seconds: float = 0.0
    offline: bool = False  # every link failed for want of a network: nothing was recorded

    def summary(self) -> str:
        if self.offline:
            return f"{OFFLINE_MESSAGE} ({self.checked} link(s) tried in {self.seconds:.1f} s)."
        counts = ", ".join(
            f"{self.states[s.value]} {s.value}" for s in LinkState if s.value in self.states
        )
        verb = "Stopped after checking" if self.stopped else "Checked"
        checked = f"{verb} {self.checked} of {self.total} link(s) in {self.seconds:.1f} s"
        return f"{checked}: {counts or 'none'}."


def run_check(
    run: LinkCheckRun,
    *,
    on_progress: Callable[[RunReport], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> RunReport:
    """Check every published link for a claimed run, recording each result as it comes."""
    started = time.monotonic()
    claim = run.claimed_by
    run_id = run.id
    resources_by_url, report = _links_to_check(run_id)
    lost = False
    problems_so_far = 0
    # Results are held back while every one so far failed for want of a network (the machine
    # may be offline); the first that reached a server, or that failed on its own, releases them.
    held: list[checker.LinkResult] = []
    reached_network = False

    def record(result: checker.LinkResult) -> None:
        nonlocal problems_so_far
        owners = resources_by_url[result.url]
        _record(result, [resource_id for resource_id, _ in owners], run_id)
        if result.is_problem:
            problems_so_far += len(owners)

    def keep_progress() -> bool:
        """Write progress and renew the lease; False if another worker has taken the run."""
        result = db.session.execute(
            update(LinkCheckRun)
            .where(LinkCheckRun.id == run_id, LinkCheckRun.claimed_by == claim)
            .values(checked=report.checked, problems=problems_so_far, lease_until=utcnow() + LEASE)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)

    results = checker.iter_results(
        list(resources_by_url), should_stop=lambda: lost or should_stop(), **checker_options()
    )

    def record_batch() -> bool:
        """Record results until a batch is due to be committed (True), or until there are no more
        (False). The progress of a batch's last result is shown after its commit."""
        nonlocal reached_network
        batch_started = time.monotonic()
        for count, result in enumerate(results, start=1):
            owners = resources_by_url[result.url]
            if reached_network:
                record(result)
            elif result.network_failure:
                held.append(result)
            else:
                reached_network = True
                for earlier in held:
                    record(earlier)
                held.clear()
                record(result)
            report.checked += len(owners)
            report.states[result.state] += len(owners)
            if result.is_problem:
                report.problems.extend((title, result) for _, title in owners)
            if count >= PROGRESS_EVERY or time.monotonic() - batch_started >= PROGRESS_SECONDS:
                return True
            if on_progress:
                on_progress(report)
        return False

    try:
        more = True
        while more:
            with unit_of_work():  # a batch of results, with the progress and lease they renew
                more = record_batch()
                if more:
                    lost = lost or not keep_progress()
            if more and on_progress:
                on_progress(report)
    except BaseException:  # Ctrl-C, a database error: end the run now, not when its lease runs out
        with unit_of_work():  # the batch in hand is rolled back already
            _abandon(run_id, claim)
        raise
    report.seconds = time.monotonic() - started
    if lost:
        report.stopped = True
        return report
    _finish(report, claim, problems_so_far, reached_network)
    if on_progress:
        on_progress(report)
    return report


def _links_to_check(run_id: int) -> tuple[dict[str, list[tuple[int, str]]], RunReport]:
    """Every published link's address with the resources (id, title) that give it, read in a
    transaction of its own (the fetching that follows may take minutes), and the run's report
    with its total, which the run's row shows from now on."""
    resources_by_url: dict[str, list[tuple[int, str]]] = defaultdict(list)
    with unit_of_work():
        for resource in db.session.scalars(published_links().order_by(Resource.id)):
            resources_by_url[resource.url].append((resource.id, resource.title))
        report = RunReport(run_id=run_id, total=sum(len(r) for r in resources_by_url.values()))
        db.session.execute(
            update(LinkCheckRun).where(LinkCheckRun.id == run_id).values(total=report.total)
        )
    return resources_by_url, report


def _finish(report: RunReport, claim: str | None, problems: int, reached_network: bool) -> None:
    """End the run this worker still holds: finished (every link checked) or handed back, queued
    again for this or another worker. A finished run prunes the history and sets the schedule's
    next run."""
    finished = report.checked >= report.total
    # Offline: every link tried failed for want of a network. Their states are kept as they were.
    report.offline = finished and report.checked > 0 and not reached_network
    if report.offline:
        report.problems.clear()
        report.states.clear()
    values = dict(
        checked=report.checked,
        problems=0 if report.offline else problems,
        claimed_by=None,
        lease_until=None,
        offline=report.offline,
    )
    if finished:
        values["finished_at"] = utcnow()
    with unit_of_work():
        db.session.execute(
            update(LinkCheckRun)
            .where(LinkCheckRun.id == report.run_id, LinkCheckRun.claimed_by == claim)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if finished:
            _prune_history()
            schedule = db.session.get(LinkCheckSchedule, SCHEDULE_ID)
            if schedule is not None and schedule.enabled:
                # Offline, the scheduled check is tried again in an hour rather than in days.
                wait = OFFLINE_RETRY if report.offline else timedelta(days=schedule.interval_days)
                schedule.next_run_at = utcnow() + wait
    report.stopped = not finished


def _abandon(run_id: int, claim: str | None) -> None:
    db.session.execute(
        update(LinkCheckRun)
        .where(LinkCheckRun.id == run_id, LinkCheckRun.claimed_by == claim)
        .values(claimed_by=None, lease_until=None, finished_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def _fits(url: str | None) -> str | None:
    return url if url and len(url) <= URL_LENGTH else None


def _record(
    result: checker.LinkResult, resource_ids: list[int], run_id: int, now: datetime | None = None
) -> None:
    now = now or utcnow()
    state = LinkState(result.state)
    for resource_id in resource_ids:
        db.session.add(
            LinkCheck(
                resource_id=resource_id,
                run_id=run_id,
                checked_at=now,
                url=result.url,
                state=state,
                status_code=result.status_code,
                final_url=_fits(result.final_url),
                redirects=result.redirects_text,
                permanent_redirect=result.permanent_redirect,
                error=result.error,
                elapsed_ms=result.elapsed_ms,
            )
        )
    # Only if the address is still the one checked: staff may have edited it meanwhile.
    db.session.execute(
        update(Resource)
        .where(Resource.id.in_(resource_ids), Resource.url == result.url)
        .values(
            link_state=state,
            last_checked_at=now,
            last_status_code=result.status_code,
            final_url=_fits(result.final_url),
            last_error=result.error,
            updated_at=Resource.updated_at,  # a check is not an edit
        )
        .execution_options(synchronize_session=False)
    )
    db.session.flush()


def record_finished_run(
    results: list[checker.LinkResult], *, at: datetime, trigger: str
) -> LinkCheckRun:
    """Store results found elsewhere as one finished run at `at`, exactly as a real run stores
    its own: the demo's illustrative history, or results imported from another checker. Each
    result goes to every published link with its address. Flushes; fetches nothing."""
    owners: dict[str, list[int]] = defaultdict(list)
    for resource in db.session.scalars(published_links().order_by(Resource.id)):
        owners[resource.url].append(resource.id)
    run = LinkCheckRun(trigger=trigger, started_at=at, total=sum(map(len, owners.values())))
    db.session.add(run)
    db.session.flush()
    for result in results:
        if ids := owners.get(result.url):
            _record(result, ids, run.id, now=at)
            run.checked += len(ids)
            run.problems += len(ids) if result.is_problem else 0
    run.finished_at = at + timedelta(seconds=max(1, len(results)))
    _prune_history()
    db.session.flush()
    return run


def _prune_history() -> None:
    """Keep the last HISTORY_KEPT checks of each resource."""
    ranked = db.select(
        LinkCheck.id,
        func.row_number()
        .over(
            partition_by=LinkCheck.resource_id,
            order_by=(LinkCheck.checked_at.desc(), LinkCheck.id.desc()),
        )
        .label("rank"),
    ).subquery()
    old = db.select(ranked.c.id).where(ranked.c.rank > HISTORY_KEPT)
    db.session.execute(
        delete(LinkCheck).where(LinkCheck.id.in_(old)).execution_options(synchronize_session=False)
    )


# --- what staff see and do ------------------------------------------------------------------------


def accept_redirect(resource: Resource) -> None:
    """Use the address a permanent redirect leads to as the link's own address."""
    if not resource.is_link or resource.link_state != LinkState.redirected:
        raise HealthError(
            "Only a link that the last check found redirected can take a new address."
        )
    last = latest_check(resource.id)
    if last is None or last.url != resource.url or not last.final_url:
        raise HealthError("Check the link again first: the last check was of another address.")
    if not last.permanent_redirect:
        raise HealthError(
            "That redirect is temporary (302, 303 or 307), so the old address should stay."
        )
    other = db.session.scalar(
        db.select(Resource)
        .where(Resource.url == last.final_url, Resource.id != resource.id)
        .order_by(Resource.id)
        .limit(1)
    )
    if other is not None:
        raise HealthError(
            f"“{other.title}” already links to {last.final_url}: mark this one as replaced by "
            "it instead (on its page, under “Replaced by another resource”)."
        )
    resource.url = last.final_url
    resource.final_url = last.final_url
    resource.link_state = LinkState.ok
    resource.last_error = None
    db.session.flush()


def latest_check(resource_id: int) -> LinkCheck | None:
    return db.session.scalar(
        db.select(LinkCheck)
        .where(LinkCheck.resource_id == resource_id)
        .order_by(LinkCheck.checked_at.desc(), LinkCheck.id.desc())
        .limit(1)
    )


def state_counts() -> dict[LinkState, int]:
    links = published_links().subquery()
    rows = db.session.execute(
        db.select(links.c.link_state, func.count()).group_by(links.c.link_state)
    ).all()
    found = dict(rows)
    return {state: found.get(state, 0) for state in LinkState}


def needing_attention() -> list[Resource]:
    order = {state: n for n, state in enumerate(ATTENTION_STATES)}
    resources = db.session.scalars(
        published_links().where(Resource.link_state.in_(ATTENTION_STATES))
    ).all()
    return sorted(resources, key=lambda r: (order[r.link_state], r.title.lower(), r.id))


def unchecked_links() -> list[Resource]:
    """Published links no check has looked at yet (new, or published since the last run)."""
    return list(
        db.session.scalars(
            published_links()
            .where(Resource.link_state == LinkState.unchecked)
            .order_by(func.lower(Resource.title), Resource.id)
        )
    )


def histories(resource_ids: list[int], per_resource: int = 5) -> dict[int, list[LinkCheck]]:
    """The last few checks of each resource, in one query."""
    found: dict[int, list[LinkCheck]] = defaultdict(list)
    if not resource_ids:
        return found
    for check in db.session.scalars(
        db.select(LinkCheck)
        .where(LinkCheck.resource_id.in_(resource_ids))
        .order_by(LinkCheck.resource_id, LinkCheck.checked_at.desc(), LinkCheck.id.desc())
    ):
        if len(found[check.resource_id]) < per_resource:
            found[check.resource_id].append(check)
    return found
