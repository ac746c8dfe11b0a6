"""Every write to a booking (contract section 4), one transaction each.

- ``lifecycle``: who may make which move (``TRANSITIONS``) and the one place a status
  changes (``transition``), with what each move announces (``ANNOUNCEMENTS``; the
  notifications are ``messaging``'s, on ``bookings.signals``);
- ``creation``: a customer's new booking;
- ``offers``: dispatch and its clock, staff assignment, a partner withdrawn from work;
- ``moves``: the partner's accept, reject and progress; cancel; staff completion.

Callers (socket handlers, REST views, admin actions, the sweeper) use the verbs below.
"""

from bookings.services.creation import booking_create, insert_with_number
from bookings.services.lifecycle import TRANSITIONS
from bookings.services.moves import (
    booking_accept,
    booking_cancel,
    booking_complete,
    booking_reject,
    booking_update_status,
)
from bookings.services.offers import (
    booking_assign,
    booking_dispatch,
    connect_receivers,
    dispatch_backlog,
    dispatch_sweep,
    partner_jobs_release,
)

__all__ = [
    "TRANSITIONS",
    "booking_accept",
    "booking_assign",
    "booking_cancel",
    "booking_complete",
    "booking_create",
    "booking_dispatch",
    "booking_reject",
    "booking_update_status",
    "connect_receivers",
    "dispatch_backlog",
    "dispatch_sweep",
    "insert_with_number",
    "partner_jobs_release",
]
