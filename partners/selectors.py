"""Reads about partners that more than one door needs (writes: ``partners.services``)."""

from typing import Any

from partners.models import Partner


def partners_last_location_at(*, partner_ids: list[int]) -> dict[int, Any]:
    """When each partner's stored position was recorded (left out: never, or no such partner).
    Every partner connect reads it (the buffer's newest-known seed), a reconnect storm's in one
    query (``partners.sockets``)."""
    rows = Partner.objects.filter(pk__in=partner_ids, last_location_at__isnull=False)
    return dict(rows.values_list("user_id", "last_location_at"))
