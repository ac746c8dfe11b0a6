"""An empty paging parameter is an absent one (schemathesis: ``?cursor=&page=1``, contract 10.2).

Both ``page`` and ``cursor`` are in the bookings list's schema; a list pages by one of them
(own lists by page, staff lists by cursor). A value for the other is refused; an empty one
is no value, and page 1 is where a cursor list starts too.
"""

import pytest

from tests.factories import BookingFactory

pytestmark = pytest.mark.django_db


def test_an_empty_cursor_or_page_is_no_position(api_as, customer, staff):
    mine = BookingFactory(customer=customer)
    BookingFactory()
    for query in ("?cursor=&page=1", "?cursor=", "?page=&cursor=", "?pageSize=&cursor=&page="):
        own = api_as(customer).get(f"/api/bookings/{query}")
        assert own.status_code == 200, (query, own.json())
        assert [b["id"] for b in own.json()["results"]] == [str(mine.pk)]
        everyone = api_as(staff).get(f"/api/bookings/{query}")
        assert everyone.status_code == 200, (query, everyone.json())
        assert len(everyone.json()["results"]) == 2
    # A position the list does not page by is still refused, not ignored.
    assert api_as(customer).get("/api/bookings/?cursor=abc").json()["details"] == {"cursor": ["not applicable"]}
    assert api_as(staff).get("/api/bookings/?page=2").json()["details"] == {"page": ["not applicable"]}
