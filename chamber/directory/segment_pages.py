"""Staff pages for segments: build one with a live count, save it, see who is in it (paged and as
CSV) and who was left out and why."""

from __future__ import annotations

from flask import Response, abort, flash, jsonify, redirect, render_template, request, url_for

from chamber.auth.audit import record
from chamber.auth.guard import ORGANISERS, acting_user, staff_blueprint
from chamber.core.csvexport import csv_bytes
from chamber.core.errors import form_status, refusals_shown_on
from chamber.core.pagination import paginate
from chamber.core.routing import id_arg
from chamber.directory import segments
from chamber.directory.models import Segment
from chamber.directory.segment_forms import SaveSegmentForm
from chamber.members import marketing
from chamber.members.models import MarketingTopic, SizeBand

bp = staff_blueprint(
    "directory_segments", __name__, roles=ORGANISERS, url_prefix="/staff/directory/segments"
)
PER_PAGE = 50


def _segment_or_404(segment_id: int) -> Segment:
    segment = segments.find_segment(segment_id)
    if segment is None:
        abort(404)
    return segment


def _page(template: str, filters: segments.SegmentFilters, **context):
    """The builder or a saved segment: the filters, the count, and a page of who is in it."""
    events = segments.event_choices()
    tally = segments.tally(filters)
    people = paginate(segments.people_query(filters), per_page=PER_PAGE, total=tally.included)
    return render_template(
        template,
        filters=filters,
        args=filters.as_args(),
        described=filters.describe(dict(events)),
        tally=tally,
        people=people,
        bases=segments.bases(filters, people.items),
        events=events,
        size_bands=list(SizeBand),
        topics=list(MarketingTopic),
        statuses=segments.STATUSES,
        membership=segments.MEMBERSHIP,
        history=segments.HISTORY,
        reasons=segments.LEFT_OUT_REASONS,
        basis_labels={basis.value: basis.label for basis in marketing.Basis},
        **context,
    )


@bp.get("/")
def index():
    return render_template("directory/segments/index.html", saved=segments.saved_segments())


@bp.route("/new", methods=["GET", "POST"])
def new():
    filters = segments.SegmentFilters.from_args(request.values)
    form = SaveSegmentForm()
    if form.validate_on_submit():
        with refusals_shown_on(form):
            segment = segments.save_segment(form.name.data, filters, by=acting_user())
            flash(f"Saved the segment “{segment.name}”.", "success")
            return redirect(url_for(".show", segment_id=segment.id))
    page = _page("directory/segments/build.html", filters, form=form, segment=None)
    return page, form_status(form)


@bp.get("/<int:segment_id>")
def show(segment_id: int):
    """A saved segment as it resolves today."""
    segment = _segment_or_404(segment_id)
    filters = segments.SegmentFilters.from_json(segment.filters)
    return _page("directory/segments/show.html", filters, segment=segment)


@bp.route("/<int:segment_id>/edit", methods=["GET", "POST"])
def edit(segment_id: int):
    """The builder for a saved segment: its filters come in the query string (the "Change" link
    carries them), so changing them shows the new count before anything is saved."""
    segment = _segment_or_404(segment_id)
    filters = segments.SegmentFilters.from_args(request.values)
    form = SaveSegmentForm(data={"name": segment.name})
    if form.validate_on_submit():
        with refusals_shown_on(form):
            segments.save_segment(form.name.data, filters, by=acting_user(), segment=segment)
            flash(f"Saved the segment “{segment.name}”.", "success")
            return redirect(url_for(".show", segment_id=segment.id))
    page = _page("directory/segments/build.html", filters, form=form, segment=segment)
    return page, form_status(form)


@bp.post("/<int:segment_id>/delete")
def delete(segment_id: int):
    segment = _segment_or_404(segment_id)
    name = segment.name
    segments.delete_segment(segment)
    flash(f"Deleted the segment “{name}”. Nobody in it was changed.", "success")
    return redirect(url_for(".index"))


@bp.get("/count")
def count():
    """The builder's live count, as the filters stand (the page works without it)."""
    tally = segments.tally(segments.SegmentFilters.from_args(request.args))
    return jsonify(included=tally.included, left_out=tally.left_out_total)


@bp.get("/left-out/<reason>")
def left_out(reason: str):
    """Who the filters match but marketing on the topic may not reach, for one reason, by name."""
    filters = segments.SegmentFilters.from_args(request.args)
    if reason not in segments.LEFT_OUT_REASONS:
        abort(404)
    people = paginate(segments.left_out_query(filters, reason), per_page=PER_PAGE)
    return render_template(
        "directory/segments/left_out.html",
        filters=filters,
        args=filters.as_args(),
        reason=reason,
        reasons=segments.LEFT_OUT_REASONS,
        people=people,
        described=filters.describe(dict(segments.event_choices())),
    )


@bp.get("/people.csv")
def export():
    """Who is in it, as CSV (formula-safe): the builder's filters, or a saved segment's."""
    segment_id = request.args.get("segment", type=id_arg)
    if segment_id is not None:
        segment = _segment_or_404(segment_id)
        filters = segments.SegmentFilters.from_json(segment.filters)
        name = f"segment-{segment.id}"
    else:
        filters = segments.SegmentFilters.from_args(request.args)
        name = "segment"
    body = csv_bytes(segments.EXPORT_HEADER, segments.export_rows(filters))
    record(
        "exported",
        kind="segment" if segment_id is not None else "directory",
        object_id=segment_id,
        detail="segment CSV",
    )
    return Response(
        body,
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )
