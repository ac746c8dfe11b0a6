"""The product's namespace and room names. Spelled here and nowhere else.

``config.realtime`` knows none of them: every socket joins its user's room (``user``,
the one room the infrastructure itself uses); the rest belong to the apps.
"""

from config.realtime.identity import user_room

CUSTOMER = "/customer"
PARTNER = "/partner"
ADMIN = "/admin"
NAMESPACES = (CUSTOMER, PARTNER, ADMIN)
# Namespaces where a person receives user-directed events (messages, notifications).
PERSON_NAMESPACES = (CUSTOMER, PARTNER)

ADMINS = "admins"
MONITOR_BOOKINGS = "monitor:bookings"


user = user_room


def booking(booking_id: object) -> str:
    return f"booking:{booking_id}"
