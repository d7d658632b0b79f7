"""The form that names and saves a segment (its filters come with it from the builder)."""

from __future__ import annotations

from chamber.core.forms import ChamberForm, text_field
from chamber.directory.segments import NAME_MAX


class SaveSegmentForm(ChamberForm):
    name = text_field(
        "Name",
        NAME_MAX,
        required="Enter a name for the segment.",
        description="For example “SME members who have never attended a seminar”.",
    )
