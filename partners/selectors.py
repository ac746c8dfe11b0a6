"""Reads about partners that more than one door needs (writes: ``partners.services``)."""

from datetime import UTC, datetime
from typing import Any

from django.db import connection

from partners.models import Partner


def partner_last_location_at(*, partner_id: int) -> Any:
    """When the partner's stored position was recorded (``None``: never). Raw SQL: every partner
    connect reads it (the buffer's newest-known seed)."""
    table = connection.ops.quote_name(Partner._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT last_location_at FROM {table} WHERE user_id = %s", [partner_id])
        row = cursor.fetchone()
    value = row[0] if row else None
    if isinstance(value, str):  # SQLite: text in Django's format, UTC
        value = datetime.fromisoformat(value)
        value = value if value.tzinfo else value.replace(tzinfo=UTC)
    return value
