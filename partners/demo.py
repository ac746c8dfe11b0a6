"""The try-it logins: their passwords are published (README, ``seed_demo``'s output).

``seed_demo`` creates them; a production server names every account that still opens with
one of them in a warning at start (contract 10.2; ``config.production.on_start_check``,
registered by this app's ``ready``).
"""

import re

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password

STAFF = ("admin", "admin12345")
CUSTOMER_PASSWORD = "customer12345"
PARTNER_PASSWORD = "partner12345"
CUSTOMER_NAME = "customer{}"
PARTNER_NAME = "partner{}"
# At most this many accounts are checked at a start: each check is a password hash (a large
# part of a CPU-second with production's hasher), and seed_demo names them in order.
CHECKED = 50
_DEMO_NAME = re.compile(r"^(customer|partner)\d+$")


def published_password(username: str) -> str | None:
    """The published password of a demo username, or ``None`` for any other name."""
    if username == STAFF[0]:
        return STAFF[1]
    found = _DEMO_NAME.match(username)
    if found is None:
        return None
    return CUSTOMER_PASSWORD if found.group(1) == "customer" else PARTNER_PASSWORD


def accounts_with_published_passwords() -> list[str]:
    """Usernames of active accounts that open with a published demo password."""
    users = get_user_model().objects.filter(is_active=True)
    candidates = users.filter(username__regex=r"^(admin|customer[0-9]+|partner[0-9]+)$").order_by("pk")
    return [
        username
        for username, encoded in candidates.values_list("username", "password")[:CHECKED]
        # the function, not the user's method: no rehash is saved behind the operator's back
        if (password := published_password(username)) and check_password(password, encoded)
    ]


def demo_logins_warning() -> str | None:
    """The start-up warning of a production server whose database holds demo logins."""
    found = accounts_with_published_passwords()
    if not found:
        return None
    return (
        f"accounts open with a published demo password (seed_demo): {', '.join(found)}; "
        "anyone can sign in as them: deactivate them or change their passwords"
    )
