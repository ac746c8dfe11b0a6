"""The admin's trace map: what the page's script needs, written into the page as JSON."""

from django import template
from django.conf import settings
from django.urls import reverse
from django.utils.html import json_script
from django.utils.safestring import SafeString

from bookings.models import Booking

register = template.Library()


@register.simple_tag
def trace_map_config(booking: Booking) -> SafeString:
    """The trace's URL (the page reads it with the staff member's session), the booking's place,
    and the tiles (``MAP_TILE_URL``; empty: none, the route still shows)."""
    return json_script(
        {
            "url": reverse("booking-trace", args=[booking.pk]),
            "destination": [booking.latitude, booking.longitude],
            "tileUrl": settings.MAP_TILE_URL,
            "tileAttribution": settings.MAP_TILE_ATTRIBUTION,
        },
        "trace-config",
    )
