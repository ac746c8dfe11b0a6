"""Reads about partners that more than one door needs (writes: ``partners.services``)."""

from datetime import datetime

from django.db import connection
from django.utils import timezone

from partners.models import Partner


def partners_last_location_at(*, partner_ids: list[int]) -> dict[int, datetime]:
    """When each partner's stored position was recorded (left out: never, or no such partner).
    Every partner connect reads it (the buffer's newest-known seed), a reconnect storm's in one
    query (``partners.sockets``).

    Raw SQL, as ``bookings.selectors.relay_targets_of``: the ORM's compilation of this query (its
    lookups, the model's default ordering) was about a third of a connect storm's DB threads'
    time, several times the query's own (issue 34). So the ORM's conversion is done here: SQLite (the
    try-it database) answers a naive time, in the connection's zone, which the fixes' aware times
    could not be compared with."""
    if not partner_ids:
        return {}
    table = connection.ops.quote_name(Partner._meta.db_table)
    partners = ", ".join(["%s"] * len(partner_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT user_id, last_location_at FROM {table} "
            f"WHERE user_id IN ({partners}) AND last_location_at IS NOT NULL",
            list(partner_ids),
        )
        rows = cursor.fetchall()
    return {pk: at if timezone.is_aware(at) else timezone.make_aware(at, connection.timezone) for pk, at in rows}
