"""The admin's trace map: what the page's script needs, written into the page as JSON."""

import logging
import re

from django import template
from django.conf import settings
from django.urls import reverse
from django.utils.html import json_script
from django.utils.safestring import SafeString

from bookings.models import Booking

register = template.Library()
logger = logging.getLogger(__name__)
# The placeholders Leaflet fills in a tile URL (its ``L.Util.template``'s pattern). Any other one
# throws on every tile, inside the map's first ``setView``: the page's script stopped there, and
# the trace was never even read.
LEAFLET_PLACEHOLDER = re.compile(r"\{ *([\w_ -]+) *\}")
TILE_PLACEHOLDERS = frozenset({"s", "x", "y", "z", "r", "-y"})


def tile_url() -> str:
    """``MAP_TILE_URL``, or no tiles ("") when it names a placeholder Leaflet cannot fill."""
    url = settings.MAP_TILE_URL
    unknown = sorted(set(LEAFLET_PLACEHOLDER.findall(url)) - TILE_PLACEHOLDERS)
    if unknown:
        logger.warning("MAP_TILE_URL has placeholders the map cannot fill (%s): drawing no tiles", ", ".join(unknown))
        return ""
    return url


@register.simple_tag
def trace_map_config(booking: Booking) -> SafeString:
    """The trace's URL (the page reads it with the staff member's session), the booking's place,
    and the tiles (``MAP_TILE_URL``; empty, or with a placeholder other than Leaflet's: none, the
    route still shows)."""
    return json_script(
        {
            "url": reverse("booking-trace", args=[booking.pk]),
            "destination": [booking.latitude, booking.longitude],
            "tileUrl": tile_url(),
            "tileAttribution": settings.MAP_TILE_ATTRIBUTION,
        },
        "trace-config",
    )
