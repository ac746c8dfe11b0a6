"""What partners tell the apps above them, without knowing who listens.

``partners`` is the lowest app (docs/architecture.md): dispatch lives in ``bookings``,
which connects its receivers in ``BookingsConfig.ready``. Both are sent inside the
transaction of the change, so what a receiver writes commits or rolls back with it.
"""

from django.dispatch import Signal

# A partner can no longer work (suspended, deactivated): ``partner_id``, ``actor``.
# The partner's row is locked by the sender.
partner_withdrawn = Signal()
# Partners who may have become free for an offer (availability on, back online): ``partner_ids``.
partners_dispatchable = Signal()
