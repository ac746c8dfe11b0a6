"""Namespace and room names. Spelled here and nowhere else."""

CUSTOMER = "/customer"
PARTNER = "/partner"
ADMIN = "/admin"
NAMESPACES = (CUSTOMER, PARTNER, ADMIN)
# Namespaces where a person receives user-directed events (messages, notifications).
PERSON_NAMESPACES = (CUSTOMER, PARTNER)

ADMINS = "admins"
MONITOR_BOOKINGS = "monitor:bookings"


def user(user_id: object) -> str:
    return f"user:{user_id}"


def booking(booking_id: object) -> str:
    return f"booking:{booking_id}"
