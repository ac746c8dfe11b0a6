"""The arrival estimate (contract 8.2): distance and time from a partner to a place. The geometry
itself is ``partners.geo``'s."""

from config.hot_settings import hot
from partners.geo import distance_m

# Below this reported speed (m/s, a brisk walk) a partner counts as standing still.
MOVING_SPEED = 1.0


def eta_seconds(distance: float, speed: float | None = None) -> int:
    """Seconds to cover ``distance`` metres: at the reported ``speed`` (m/s) when moving, else city speed."""
    if speed is None or speed < MOVING_SPEED:
        speed = hot.CITY_SPEED_KMH / 3.6
    return round(distance / speed)


def arrival(
    partner_lat: float | None, partner_lng: float | None, lat: float, lng: float, speed: float | None = None
) -> dict[str, int]:
    """``{distanceMeters, etaSeconds}`` from the partner to a place; empty when the partner's position is unknown."""
    if partner_lat is None or partner_lng is None:
        return {}
    distance = distance_m(partner_lat, partner_lng, lat, lng)
    return {"distanceMeters": round(distance), "etaSeconds": eta_seconds(distance, speed)}
