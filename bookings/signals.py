"""What bookings tell the apps above them, without knowing who listens.

Sent inside the transaction of the move (the caller holds the booking's row lock), so what a
receiver writes (``messaging`` stores its notifications) commits or rolls back with it.
Every receiver gets the ``booking``.
"""

from django.dispatch import Signal

# A booking changed status (``bookings.services.lifecycle.transition``): ``from_status``, and
# ``partner``, the partner the move concerns (the booking's, or the one it just left; may be None).
booking_status_changed = Signal()
# Staff took an offer or a job back from ``partner`` (re-assigned, partner withdrawn): ``partner``, ``reason``.
offer_withdrawn = Signal()
# ``partner`` let the offer lapse; the booking is back to PENDING.
offer_expired = Signal()
# Dispatch found nobody to offer the booking to for now and keeps looking.
partner_search_continues = Signal()
# The booking's partner can no longer work (suspended, deactivated): it went back to dispatch.
booking_released = Signal()
# ``seed_demo`` made its demo data (the apps above add theirs): ``customers``, ``partners`` and
# ``services``, the demo ones. A receiver may answer a line for the command to print.
demo_seeded = Signal()
