"""The audit trail's page for admins: filter, page through, export. Nothing here changes it."""

from __future__ import annotations

from flask import Response, current_app, render_template, request

from chamber.auth import audit
from chamber.auth.audit import AuditEntry
from chamber.auth.forms import AuditFilterForm
from chamber.auth.guard import staff_blueprint
from chamber.auth.models import Role
from chamber.core.csvexport import csv_bytes
from chamber.core.pagination import keyset_page
from chamber.core.times import utcnow

bp = staff_blueprint("audit", __name__, roles=[Role.admin], url_prefix="/staff/audit")

PER_PAGE = 50


def _filters() -> tuple[AuditFilterForm, dict[str, object]]:
    """The form as sent in the query string, and the filters it gives (none from a field in
    error: the page says what is wrong and shows everything else's matches)."""
    form = AuditFilterForm(request.args)
    form.validate()
    values: dict[str, object] = {}
    for name in ("who", "action", "kind", "object_id", "since", "until"):
        field = form[name]
        if not field.errors and field.data:
            values[name] = field.data
    return form, values


def _query_args(values: dict[str, object]) -> dict[str, str]:
    return {
        name: value.isoformat() if hasattr(value, "isoformat") else str(value)
        for name, value in values.items()
    }


@bp.get("/")
def index():
    form, values = _filters()
    page = keyset_page(audit.entries(**values), AuditEntry.id, PER_PAGE)  # type: ignore[arg-type]
    return render_template(
        "auth/audit.html",
        form=form,
        page=page,
        args=_query_args(values),
        kinds=audit.object_kinds(),
        retention_months=current_app.config["AUDIT_RETENTION_MONTHS"],
    ), (400 if form.errors else 200)


@bp.get("/audit.csv")
def export():
    """The matching entries as CSV; the export is itself an entry in the log."""
    _form, values = _filters()
    rows = audit.export_rows(audit.entries(**values))  # type: ignore[arg-type]
    described = ", ".join(f"{k}={v}" for k, v in _query_args(values).items()) or "all entries"
    audit.record(
        "exported", kind="audit_log", detail=f"audit log CSV, {len(rows)} rows: {described}"
    )
    body = csv_bytes(audit.EXPORT_HEADER, rows)
    filename = f"audit-{utcnow():%Y%m%d-%H%M}.csv"
    return Response(
        body,
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
