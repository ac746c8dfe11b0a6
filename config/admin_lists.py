"""Admin change lists over tables that grow with history (bookings, their history, messages).

Django's admin counts the whole filtered table for its paginator, and again unfiltered for
"N total": two scans of a million rows before the first page shows. Here a list counts
exactly up to ``EXACT_UP_TO`` rows (a bounded read) and above that shows PostgreSQL's
planner estimate for the same query, which costs nothing; the total is not counted at all.
"""

import json

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import QuerySet
from django.utils.functional import cached_property

EXACT_UP_TO = 10_000


def bounded_count(queryset: QuerySet) -> int:
    """Exact up to ``EXACT_UP_TO``; above it, the planner's estimate (PostgreSQL) or the count."""
    rows = queryset.order_by()
    exact = rows[: EXACT_UP_TO + 1].count()
    if exact <= EXACT_UP_TO:
        return exact
    if connections[rows.db].vendor != "postgresql":
        return rows.count()  # the embedded SQLite of development: small, and no estimate to ask for
    sql, params = rows.query.sql_with_params()
    with connections[rows.db].cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        (plan,) = cursor.fetchone()
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return max(exact, int(plan[0]["Plan"]["Plan Rows"]))


class EstimatingPaginator(Paginator):
    @cached_property
    def count(self) -> int:
        return bounded_count(self.object_list)


class HistoryListAdmin(admin.ModelAdmin):
    """A change list over a growing table: bounded counts, no total, related rows in the same query."""

    paginator = EstimatingPaginator
    show_full_result_count = False
    list_select_related = True
