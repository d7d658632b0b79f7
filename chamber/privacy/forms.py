"""The privacy notice's edit form and the form that looks a person up by email."""

from __future__ import annotations

from chamber.core.forms import ChamberForm, email_field, text_field
from chamber.privacy.notice import BODY_MAX, SUMMARY_MAX


class NoticeForm(ChamberForm):
    body = text_field(
        "The notice, in Markdown",
        BODY_MAX,
        required="Enter the text of the privacy notice.",
        area=True,
        description=(
            "Headings with #, lists with -, links as [text](https://...). The chamber's name and "
            "contact address are shown above it from the settings."
        ),
        render_kw={"rows": 30},
    )
    summary = text_field(
        "What changed (optional)",
        SUMMARY_MAX,
        description="A line for the history, like “Added our new mailing provider”.",
    )


class PersonForm(ChamberForm):
    """The address to look up: sent in the body of a POST, so it is never in a URL or a log."""

    email = email_field(
        "Email address",
        required="Enter the person's email address.",
        description="Every row that holds this address, or belongs to the person who has it.",
        render_kw={"autocomplete": "off"},
    )
