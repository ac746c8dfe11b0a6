"""Distances on the Earth's surface: the geometry of positions, which every app above reads
(dispatch's reach, the relay's arrival estimate in ``bookings.geo``, the trace's thinning)."""

import math

EARTH_RADIUS_M = 6_371_008.8
METERS_PER_DEGREE = math.pi * EARTH_RADIUS_M / 180


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance in metres."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlmb = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def bounding_box(latitude: float, longitude: float, radius_m: float) -> tuple[float, float, float, float]:
    """``(south, north, west, east)`` of a box holding every point within ``radius_m`` of the centre."""
    dlat = radius_m / METERS_PER_DEGREE
    # Longitude degrees shrink with latitude; near the poles the box spans every longitude.
    cos_lat = math.cos(math.radians(latitude))
    dlon = 180.0 if cos_lat < 1e-6 else min(180.0, dlat / cos_lat)
    return latitude - dlat, latitude + dlat, longitude - dlon, longitude + dlon
