"""What a partner (and an account's name) looks like on the wire: each shape's schema beside its
builder (``config.shapes``), for REST, events and both documents."""

from typing import Any

from config.formats import iso
from config.realtime.catalogue import BOOLEAN, ID, LOCATION, NUMBER, STRING, TIME, enum, nullable, obj
from config.shapes import shape
from partners.models import KycStatus, Partner


def display_name(user: Any) -> str:
    return user.get_full_name() or user.username


def partner_location(partner: Partner) -> dict[str, float] | None:
    if partner.last_latitude is None or partner.last_longitude is None:
        return None
    return {"latitude": partner.last_latitude, "longitude": partner.last_longitude}


PARTNER_SUMMARY = obj({"id": ID, "name": STRING, "phone": STRING, "rating": NUMBER})


@shape("PartnerSummary", PARTNER_SUMMARY)
def partner_summary(partner: Partner) -> dict[str, Any]:
    """How a partner appears inside a booking and in ``partner:assigned``."""
    return {"id": str(partner.pk), "name": partner.name, "phone": partner.phone, "rating": float(partner.rating)}


PARTNER_LOCATED = obj({**PARTNER_SUMMARY["properties"], "location": nullable(LOCATION)})

PARTNER = obj(
    {
        **PARTNER_SUMMARY["properties"],
        "services": {"type": "array", "items": ID},
        "isAvailable": BOOLEAN,
        "isSuspended": BOOLEAN,
        "kycStatus": enum(KycStatus.values),
        "createdAt": TIME,
    }
)


@shape("Partner", PARTNER)
def partner_profile(partner: Partner) -> dict[str, Any]:
    """A partner's own profile (sign-up's answer)."""
    return {
        **partner_summary(partner),
        "services": [str(pk) for pk in partner.services.values_list("pk", flat=True)],
        "isAvailable": partner.is_available,
        "isSuspended": partner.is_suspended,
        "kycStatus": partner.kyc_status,
        "createdAt": iso(partner.created_at),
    }
