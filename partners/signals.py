"""What partners tell the apps above them, without knowing who listens.

``partners`` is the lowest app (docs/architecture.md): dispatch lives in ``bookings``, which
connects its receivers in ``BookingsConfig.ready``; notifications in ``messaging``
(``MessagingConfig.ready``). ``partner_withdrawn``, ``kyc_decided`` and ``earning_recorded`` are
sent inside the transaction of the change, so what a receiver writes commits or rolls back with
it; ``partners_dispatchable`` by changes that hold none (the receiver opens its own).
"""

from django.dispatch import Signal

# A partner can no longer work (suspended, deactivated): ``partner_id``, ``actor``.
# The partner's row is locked by the sender.
partner_withdrawn = Signal()
# Partners who may have become free for an offer (availability on, back online): ``partner_ids``.
partners_dispatchable = Signal()
# Staff decided a KYC submission: ``submission`` (its status is the decision), ``note``.
kyc_decided = Signal()
# A completed booking's pay was recorded: ``earning``, ``booking``.
earning_recorded = Signal()
