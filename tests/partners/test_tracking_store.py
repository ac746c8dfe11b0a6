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


@pytest.mark.django_db
def test_the_newest_fix_read_is_the_stored_one():
    """``partners_last_location_at`` (raw SQL, read on every partner connect) answers what the ORM
    holds: an aware time per partner that has one; none for a partner without one, or unknown."""
    from partners.models import Partner
    from partners.selectors import partners_last_location_at

    located, never = PartnerFactory(), PartnerFactory()
    now = timezone.now()
    Partner.objects.filter(pk=located.pk).update(last_location_at=now)
    Partner.objects.filter(pk=never.pk).update(last_location_at=None)
    found = partners_last_location_at(partner_ids=[located.pk, never.pk, 10**9])
    assert found == {located.pk: now}
    assert found[located.pk].utcoffset() is not None
    assert partners_last_location_at(partner_ids=[]) == {}
