"""The shared paginator (`core.pagination`) when its caller already knows the total: the
registrations list without filters takes it from the counts at the top of the page and runs no
COUNT query, and its page links, last page and bad page numbers behave as a counted list's do."""

from __future__ import annotations

import pytest

from chamber.registration import manage
from tests.factories import make_booking
from tests.support import count_queries
from tests.test_registration_staff import list_path, names_listed, person


@pytest.fixture
def twelve(make_event, monkeypatch):
    monkeypatch.setattr(manage, "PER_PAGE", 5)
    event = make_event(capacity=100, business_limit=20)
    make_booking(event, *(person(n, f"Delegate {n:02d}") for n in range(12)))
    return event


def test_an_unfiltered_list_is_paged_by_the_counts_without_a_count_query(organiser_client, twelve):
    organiser_client.get(list_path(twelve))  # warm up: the session, the login
    with count_queries() as statements:
        first = organiser_client.get(list_path(twelve))
    assert "Page 1 of 3" in first.text and "Showing 1 to 5 of 12 delegates." in first.text
    assert f'rel="next" href="{list_path(twelve)}?page=2"' in first.text
    assert 'rel="prev"' not in first.text
    assert not [s for s in statements if s.lstrip().upper().startswith("SELECT COUNT(*)")]

    last = organiser_client.get(list_path(twelve), query_string={"page": 3})
    assert "Page 3 of 3" in last.text and "Showing 11 to 12 of 12 delegates." in last.text
    assert f'rel="prev" href="{list_path(twelve)}?page=2"' in last.text
    assert 'rel="next"' not in last.text
    assert names_listed(organiser_client, twelve, page=3) == ["Delegate 10", "Delegate 11"]


@pytest.mark.parametrize("number", ["0", "-1", "abc", "", "1.5"])
def test_a_bad_page_number_shows_the_first_page(organiser_client, twelve, number):
    response = organiser_client.get(list_path(twelve), query_string={"page": number})
    assert response.status_code == 200
    assert "Page 1 of 3" in response.text
    assert names_listed(organiser_client, twelve, page=number)[:1] == ["Delegate 00"]


@pytest.mark.parametrize("number", ["4", "999999999999999999999"])
def test_a_page_past_the_end_is_an_empty_page_with_a_way_back(organiser_client, twelve, number):
    response = organiser_client.get(list_path(twelve), query_string={"page": number})
    assert response.status_code == 200
    assert names_listed(organiser_client, twelve, page=number) == []
    assert "the list has 3" in response.text and "Nobody has booked" not in response.text
    assert f'href="{list_path(twelve)}?page=3">Go to the last page' in response.text
