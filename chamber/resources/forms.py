"""Forms for the resource library: a link or a guide, its replacement, and attaching it to an
event or a talk."""

from __future__ import annotations

from wtforms import SelectField, SelectMultipleField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from chamber.core.forms import ChamberForm, text_field
from chamber.core.text import SLUG_PATTERN
from chamber.members.models import SizeBand
from chamber.resources import services
from chamber.resources.models import ResourceKind

PLAIN_TEXT_FIELDS = ("title", "publisher", "description", "category", "tags", "staff_note")


class CheckboxesField(SelectMultipleField):
    """Several choices as tick boxes (GOV.UK checkboxes) rather than a multiple select."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class ResourceForm(ChamberForm):
    title = text_field(
        "Title",
        200,
        required="Enter the resource's title.",
        description="What people will look for, such as Small Business Guide.",
    )
    url = text_field(
        "Web address",
        2000,
        description="The full address, starting with https://, like https://www.ncsc.gov.uk/.",
        render_kw={"spellcheck": "false", "autocapitalize": "none", "inputmode": "url"},
    )
    publisher = text_field(
        "Publisher",
        120,
        description="Who publishes it, such as NCSC, GOV.UK or Innovate UK.",
    )
    description = text_field(
        "Description", 2000, area=True, description="Plain text: a sentence or two on what it is."
    )
    body = text_field(
        "Guide",
        20000,
        area=True,
        description="Markdown: **bold**, *italic*, numbered lists (1. Audit), [links](https://…).",
        render_kw={"rows": 14},
    )
    category = text_field(
        "Category",
        80,
        description="One category for the library's filter, such as Cyber security or Fraud.",
        render_kw={"list": "categories"},
    )
    tags = text_field(
        "Tags",
        500,
        description="Words people might search for, separated by commas: phishing, passwords.",
    )
    audience = CheckboxesField(
        "Business sizes it is for",
        choices=[SelectChoice(band.value, band.label) for band in SizeBand],
        validators=[Optional()],
        description="Leave all unticked if it suits every size of business.",
    )
    staff_note = text_field(
        "Note from the Chamber",
        2000,
        area=True,
        description="What we now know about it, shown beside it: for example, that the body "
        "behind it has been renamed.",
    )
    slug = text_field(
        "Address in the library",
        80,
        description="The last part of its page's address, e.g. cyber-essentials. Leave blank to "
        "make one from the title.",
        render_kw={"spellcheck": "false", "autocapitalize": "none"},
    )

    def __init__(self, *args, kind: ResourceKind, **kwargs):
        super().__init__(*args, **kwargs)
        self.kind = kind
        if kind == ResourceKind.guide:
            self.description.description = "Plain text: a sentence or two for the library list."
        if self.audience.data is None:
            self.audience.data = []

    @property
    def shown_fields(self) -> list:
        """The fields this kind of resource has, in the order the form shows them."""
        names = ["title", "url" if self.kind == ResourceKind.link else "body", "publisher",
                 "description", "category", "tags", "audience", "staff_note", "slug"]  # fmt: skip
        return [self[name] for name in names]

    def validate_slug(self, field):
        if field.data and not SLUG_PATTERN.match(field.data):
            raise ValidationError(
                "Address in the library can only use lower-case letters, numbers and single "
                "hyphens, like cyber-essentials."
            )

    def validate_tags(self, field):
        if field.data and (problem := services.tags_problem(field.data)):
            raise ValidationError(problem)

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        if self.audience.errors:  # WTForms names the bad value; say what to do instead
            self.audience.errors = ["Choose business sizes from the list."]
        for name in PLAIN_TEXT_FIELDS:
            field = self[name]
            if not field.errors and services.looks_like_markup(field.data):
                field.errors = [
                    *field.errors,
                    f"{field.label.text} is plain text: remove the HTML tag (text in < >).",
                ]
                valid = False
        if self.kind == ResourceKind.link:
            if not self.url.data and not self.url.errors:
                self.url.errors = [*self.url.errors, "Enter the link's web address."]
                valid = False
            elif (
                self.url.data
                and not self.url.errors
                and (problem := services.web_address_problem(self.url.data))
            ):
                self.url.errors = [*self.url.errors, problem]
                valid = False
        elif not (self.body.data or "").strip() and not self.body.errors:
            self.body.errors = [*self.body.errors, "Write the guide's text."]
            valid = False
        return valid

    def details(self) -> services.ResourceDetails:
        """What was entered, for `services.save_resource`; only this kind's `url` or `body`."""
        link = self.kind == ResourceKind.link
        return services.ResourceDetails(
            kind=self.kind,
            title=self.title.data or "",
            slug=self.slug.data or "",
            url=(self.url.data or "") if link else "",
            body="" if link else (self.body.data or ""),
            publisher=self.publisher.data or "",
            description=self.description.data or "",
            category=self.category.data or "",
            tags=self.tags.data or "",
            staff_note=self.staff_note.data or "",
            audience=tuple(self.audience.data or ()),
        )


class SupersedeForm(ChamberForm):
    successor = SelectField(
        "Replaced by",
        coerce=int,
        description="A published resource that now does its job. Choose “Nothing” to clear.",
    )

    def __init__(self, *args, choices: list[SelectChoice], **kwargs):
        super().__init__(*args, **kwargs)
        self.successor.choices = [SelectChoice(0, "Nothing: it is not replaced"), *choices]

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        if self.successor.errors:  # WTForms says "Not a valid choice"; say what to do instead
            self.successor.errors = ["Choose a resource from the list."]
        return valid


class AttachForm(ChamberForm):
    resource = SelectField(
        "Resource",
        coerce=int,
        description="Drafts can be added now; the public sees them once they are published.",
    )
    target = SelectField("Show it with", description="The whole event, or one item on its agenda.")

    def __init__(self, *args, resources: list[SelectChoice], targets: list[SelectChoice],
                 **kwargs):  # fmt: skip
        super().__init__(*args, **kwargs)
        self.resource.choices = [SelectChoice(0, "Choose a resource"), *resources]
        self.target.choices = targets

    def validate_resource(self, field):
        if not field.data:
            raise ValidationError("Choose a resource to add.")

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        if self.resource.errors:  # say what to do, not "Not a valid choice"
            sent = (self.resource.raw_data or [""])[0].strip()
            self.resource.errors = [
                "Choose a resource to add."
                if sent in ("", "0")
                else "Choose a resource from the list."
            ]
        if self.target.errors:
            self.target.errors = ["Choose the whole event or one of its agenda items."]
        return valid
