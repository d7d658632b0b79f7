"""Schemathesis against the served OpenAPI document: every operation, valid and invalid requests,
through WSGI (no network). A 500, or a status, content type, header or body the document does not
describe, fails the test. The seed is fixed and the examples bounded, so a run is repeatable and
takes seconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import seed as fixed_seed  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from chamber.events.models import EventStatus  # noqa: E402
from tests.factories import at  # noqa: E402

pytestmark = pytest.mark.slow

SEED = 20260417
EXAMPLES = 40  # per operation and mode: enough to reach every parameter's edges, a few seconds
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
# Invalid requests (wrong types, out of range, unknown `when`) must also be refused with a 4xx.
NEGATIVE_CHECKS = [*CHECKS, negative_data_rejection]


@pytest.fixture
def events(make_event, make_speaker, make_item):
    """A small demo-like set: an upcoming seminar with talks and speakers, a cancelled one, a past
    one, one whose booking is not open yet, and a draft (never shown)."""
    seminar = make_event(
        slug="cyber",
        supporters="Police and Crime Commissioner's Community Fund",
        starts_at=datetime(2030, 6, 12, 7, 30, tzinfo=UTC),
    )
    tony = make_speaker("Tony Richardson", "Octree", job_title="Director")
    make_item(seminar, title="Welcome", length=15)
    make_item(seminar, minutes_in=15, length=45, title="Phishing", speakers=[tony])
    make_event(slug="off", status=EventStatus.cancelled)
    make_event(slug="over", starts_at=at(-30))
    make_event(slug="later", registration_opens_at=at(20), starts_at=at(40))
    make_event(slug="secret-draft", status=EventStatus.draft, starts_at=at(5) + timedelta(hours=1))
    return ["cyber", "off", "over", "later"]


def run_operation(operation, mode: GenerationMode, checks, **fixed) -> int:
    """Run `EXAMPLES` generated requests against one operation; how many were sent."""
    sent = []

    @fixed_seed(SEED)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode, **fixed))
    def check(case) -> None:
        case.call_and_validate(checks=checks)
        sent.append(case)

    check()
    return len(sent)


def test_every_operation_conforms_to_the_served_document(app, events):
    # Schemathesis leaves out the operation that served the document unless a filter names it.
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app).include(
        path_regex="^/api/"
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    documented = sum(len(item) for item in schema.raw_schema["paths"].values())
    assert documented == 3
    tested = set()
    for operation in operations:
        for mode, checks in (
            (GenerationMode.POSITIVE, CHECKS),
            (GenerationMode.NEGATIVE, NEGATIVE_CHECKS),
        ):
            if mode is GenerationMode.NEGATIVE and not operation.query:
                continue  # nothing can be made invalid: no parameters, or a slug that is any text
            assert run_operation(operation, mode, checks) > 0, (operation.label, mode)
        if operation.path_parameters:  # the generated slugs are unknown: try the real ones too
            for slug in events:
                run_operation(
                    operation, GenerationMode.POSITIVE, CHECKS, path_parameters={"slug": slug}
                )
        tested.add(operation.label)
    assert len(tested) == len(operations) == documented, tested
