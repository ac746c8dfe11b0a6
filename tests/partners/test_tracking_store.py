"""Buffered partner locations are written in one statement."""

import pytest
from django.utils import timezone

from partners.location_store import partner_locations_store
from tests.factories import PartnerFactory


@pytest.mark.django_db
def test_store():
    a, b = PartnerFactory(), PartnerFactory()
    now = timezone.now()
    partner_locations_store({a.pk: (1.5, 2.5, now), b.pk: (-3.0, 4.0, now)})
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.last_latitude, a.last_longitude, b.last_latitude) == (1.5, 2.5, -3.0)
    assert a.last_location_at == now
