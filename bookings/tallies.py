"""Running figures (the dashboard's, contract 5.3): kept as bookings and users change, never counted from history.

Every booking insert and status move adds ``TallyChange`` rows in its own transaction.
Inserting shares no row with another writer, so it never waits for a lock and can never be
part of a deadlock (a counter row updated in place would be, by every transition of the
cluster). ``fold`` moves those rows into ``Tally`` every second; any process may fold, and
``SKIP LOCKED`` gives each row to one folder. ``read`` sums both tables in one statement,
so a figure is exact at any moment, folded or not, and costs the same at any history size.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncDate
from django.db.models.signals import post_delete, post_save, pre_delete, pre_save

from bookings.models import Booking, BookingStatus, Tally, TallyChange
from config.platform_day import platform_day, platform_zone
from partners.models import Partner

ZERO = Decimal("0.00")
FOLD_BATCH = 10_000


CUSTOMERS = "customers"


@dataclass(frozen=True)
class Figures:
    by_status: dict[str, int]
    created_today: int
    revenue_today: Decimal
    revenue_total: Decimal
    customers: int


def _status(status: str) -> str:
    return f"status:{status}"


def _created(day: date) -> str:
    return f"created:{day.isoformat()}"


def _completed(day: date) -> str:
    return f"completed:{day.isoformat()}"


def booking_added(booking: Booking) -> None:
    """Count a booking just inserted (in any status: the demo seeds finished ones)."""
    changes = [
        TallyChange(key=_created(platform_day(booking.created_at)), count=1, amount=ZERO),
        TallyChange(key=_status(booking.status), count=1, amount=ZERO),
    ]
    if booking.status == BookingStatus.COMPLETED:
        changes += _completion(booking)
    TallyChange.objects.bulk_create(changes)


def booking_moved(booking: Booking, from_status: str) -> None:
    """Count a status move the caller is saving in this transaction."""
    if booking.status == from_status:
        return  # a re-assignment: the same status, another partner
    changes = [
        TallyChange(key=_status(from_status), count=-1, amount=ZERO),
        TallyChange(key=_status(booking.status), count=1, amount=ZERO),
    ]
    if booking.status == BookingStatus.COMPLETED:  # final: a completed booking never moves again
        changes += _completion(booking)
    TallyChange.objects.bulk_create(changes)


def _completion(booking: Booking) -> list[TallyChange]:
    return [
        TallyChange(key=_status(BookingStatus.COMPLETED), count=0, amount=booking.amount),
        TallyChange(key=_completed(platform_day(booking.completed_at)), count=1, amount=booking.amount),
    ]


def figures(day: date | None = None) -> Figures:
    """The figures now: bookings per status over all time, those of the platform's ``day``, customers."""
    day = day or platform_day()
    keys = [_status(status) for status in BookingStatus.values] + [_created(day), _completed(day), CUSTOMERS]
    totals = read(keys)
    return Figures(
        by_status={status: totals[_status(status)][0] for status in BookingStatus.values},
        created_today=totals[_created(day)][0],
        revenue_today=totals[_completed(day)][1],
        revenue_total=totals[_status(BookingStatus.COMPLETED)][1],
        customers=totals[CUSTOMERS][0],
    )


# ---------------------------------------------------------------- customers
# A customer is an active user who is neither staff nor a partner. Users change through many
# doors (sign-up, the admin's user form, a shell, a partner's sign-up), so the count follows
# the model signals: each save or delete of a user or a partner profile compares the user's
# standing before and after (one indexed read each; a login's ``last_login`` save is skipped).
# ``QuerySet.update`` sends no signal: ``manage.py tallies`` finds what such a write left.


def customers_of(user_model: Any) -> Any:
    return user_model._base_manager.filter(is_active=True, is_staff=False, partner__isnull=True)


def _is_customer(user_id: Any) -> bool:
    return user_id is not None and customers_of(get_user_model()).filter(pk=user_id).exists()


def _user_of(instance: Any) -> Any:
    return instance.user_id if isinstance(instance, Partner) else instance.pk


def _before(sender: Any, instance: Any, signal: Any, update_fields: Any = None, **kwargs: Any) -> None:
    if signal is pre_save and isinstance(instance, Partner) and not instance._state.adding:
        instance._was_customer = None  # an existing profile's edit changes nobody's standing
    elif update_fields is not None and not {"is_active", "is_staff"} & set(update_fields):
        instance._was_customer = None  # a login's last_login, a new password
    else:
        instance._was_customer = _is_customer(_user_of(instance))


def _after(sender: Any, instance: Any, **kwargs: Any) -> None:
    was = getattr(instance, "_was_customer", None)
    if was is None:
        return
    instance._was_customer = None
    change = int(_is_customer(_user_of(instance))) - int(was)
    if change:
        TallyChange.objects.create(key=CUSTOMERS, count=change, amount=ZERO)


def connect_receivers() -> None:
    for model in (get_user_model(), Partner):
        name = model._meta.label_lower
        pre_save.connect(_before, sender=model, dispatch_uid=f"tally-{name}-saving")
        post_save.connect(_after, sender=model, dispatch_uid=f"tally-{name}-saved")
        pre_delete.connect(_before, sender=model, dispatch_uid=f"tally-{name}-deleting")
        post_delete.connect(_after, sender=model, dispatch_uid=f"tally-{name}-deleted")


def read(keys: list[str]) -> dict[str, tuple[int, Decimal]]:
    """(count, amount) per key: folded plus not yet folded, in one statement (one snapshot)."""
    folded = Tally.objects.filter(key__in=keys).values_list("key", "count", "amount")
    pending = TallyChange.objects.filter(key__in=keys).values_list("key", "count", "amount")
    totals: dict[str, tuple[int, Decimal]] = defaultdict(lambda: (0, ZERO))
    for key, count, amount in folded.union(pending, all=True):
        total_count, total_amount = totals[key]
        totals[key] = (total_count + count, total_amount + Decimal(amount))
    return totals


def fold(limit: int = FOLD_BATCH) -> int:
    """Move up to ``limit`` changes into the tallies; rows another folder holds are left to it."""
    with transaction.atomic():
        changes = list(
            TallyChange.objects.select_for_update(skip_locked=True)
            .order_by("pk")
            .values_list("pk", "key", "count", "amount")[:limit]
        )
        if not changes:
            return 0
        sums: dict[str, list[Any]] = defaultdict(lambda: [0, ZERO])
        for _, key, count, amount in changes:
            sums[key][0] += count
            sums[key][1] += amount
        _add(sums)
        TallyChange.objects.filter(pk__in=[pk for pk, *_ in changes]).delete()
    return len(changes)


def _add(sums: dict[str, list[Any]]) -> None:
    # Keys in one order in every folder: two folds touching the same tallies cannot deadlock.
    keys = sorted(sums)
    Tally.objects.bulk_create([Tally(key=key) for key in keys], ignore_conflicts=True)
    for key in keys:
        count, amount = sums[key]
        Tally.objects.filter(key=key).update(count=F("count") + count, amount=F("amount") + amount)


def recount(booking_model: Any = Booking, user_model: Any = None) -> dict[str, tuple[int, Decimal]]:
    """Every tally from the rows themselves: a scan of the whole history (repairs, tests, migrations)."""
    zone = platform_zone()
    totals: dict[str, tuple[int, Decimal]] = {}
    customers = customers_of(user_model or get_user_model()).count()
    if customers:
        totals[CUSTOMERS] = (customers, ZERO)
    by_status = booking_model.objects.values_list("status").annotate(n=Count("pk"), s=Sum("amount")).order_by()
    for status, n, amount in by_status:
        totals[_status(status)] = (n, (amount or ZERO) if status == BookingStatus.COMPLETED else ZERO)
    created = booking_model.objects.annotate(day=TruncDate("created_at", tzinfo=zone)).values_list("day")
    for day, n in created.annotate(n=Count("pk")).order_by():
        totals[_created(day)] = (n, ZERO)
    completed = booking_model.objects.filter(Q(status=BookingStatus.COMPLETED) & Q(completed_at__isnull=False))
    completed = completed.annotate(day=TruncDate("completed_at", tzinfo=zone)).values_list("day")
    for day, n, amount in completed.annotate(n=Count("pk"), s=Sum("amount")).order_by():
        totals[_completed(day)] = (n, amount or ZERO)
    return totals


def kept() -> dict[str, tuple[int, Decimal]]:
    """Every tally as ``read`` sees it, zeros left out (a recount has no row for an empty status)."""
    keys = set(Tally.objects.values_list("key", flat=True)) | set(TallyChange.objects.values_list("key", flat=True))
    return {key: value for key, value in read(sorted(keys)).items() if value != (0, ZERO)}


def drift() -> dict[str, tuple[tuple[int, Decimal], tuple[int, Decimal]]]:
    """The tallies that differ from a recount: key -> (kept, counted)."""
    have, counted = kept(), recount()
    return {
        key: (have.get(key, (0, ZERO)), counted.get(key, (0, ZERO)))
        for key in have.keys() | counted.keys()
        if have.get(key, (0, ZERO)) != counted.get(key, (0, ZERO))
    }


def rebuild(
    booking_model: Any = Booking, tally_model: Any = Tally, change_model: Any = TallyChange, user_model: Any = None
) -> int:
    """Replace every tally by a recount (a fresh install's backfill, or a repair after writes behind
    the services' back). Run it while bookings are not being written: a write during the scan may
    be counted twice or not at all."""
    totals = recount(booking_model, user_model)
    with transaction.atomic():
        change_model.objects.all().delete()
        tally_model.objects.all().delete()
        tally_model.objects.bulk_create(
            [tally_model(key=key, count=count, amount=amount) for key, (count, amount) in totals.items()],
            batch_size=1000,
        )
    return len(totals)
