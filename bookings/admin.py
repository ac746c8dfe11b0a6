from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from bookings import selectors, services
from bookings.models import Booking, BookingRejection, BookingStatusChange, Service
from config.admin_actions import AuditTrailAdmin, run_for_each
from config.admin_lists import HistoryListAdmin
from partners.models import Partner


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    list_display = ("name", "price", "currency", "duration_minutes", "is_active")
    list_filter = ("is_active", "currency")
    search_fields = ("name",)


class HistoryInline(admin.TabularInline):
    model = BookingStatusChange
    extra = 0
    can_delete = False
    readonly_fields = ("from_status", "to_status", "role", "actor", "partner", "note", "created_at")

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class AssignForm(forms.Form):
    partner = forms.ModelChoiceField(queryset=Partner.objects.filter(is_suspended=False))


class CancelForm(forms.Form):
    reason = forms.CharField(max_length=500, required=False)


class BookingCreateForm(forms.ModelForm):
    """What staff give to create a booking for a customer; the service does the rest."""

    class Meta:
        model = Booking
        fields = ("customer", "service", "scheduled_at", "address", "latitude", "longitude", "notes")


@admin.register(Booking)
class BookingAdmin(HistoryListAdmin):
    """Bookings change only through the services: "Add" calls ``booking_create``; an existing
    booking is read-only (actions assign and cancel through the services); none is deleted.

    The list stays fast with a year of history: bounded counts (``HistoryListAdmin``), a search
    by exact booking number or username through their indexes, and no date hierarchy (which
    reads every booking's date to draw its links; the "created" filter needs no read).
    """

    list_display = (
        "number",
        "status",
        "dispatch_state",
        "dispatch_attempts",
        "service",
        "customer",
        "partner",
        "scheduled_at",
        "amount",
        "created_at",
    )
    # dispatch_state "unassigned": dispatch found nobody or ran out of offers; staff assign from here.
    list_filter = ("status", "dispatch_state", "service", "created_at")
    search_fields = ("number",)  # turns the search box on; ``get_search_results`` does the search
    search_help_text = "A booking number, or the exact username of its customer or partner."
    list_select_related = ("service", "customer", "partner")
    raw_id_fields = ("customer",)
    inlines = [HistoryInline]
    actions = ["assign_partner", "cancel_bookings", "complete_bookings"]
    add_form = BookingCreateForm

    def get_form(self, request: HttpRequest, obj: Booking | None = None, **kwargs: object) -> type[forms.ModelForm]:
        if obj is None:
            kwargs["form"] = self.add_form
        return super().get_form(request, obj, **kwargs)

    def get_inlines(self, request: HttpRequest, obj: Booking | None = None) -> list[type]:
        return self.inlines if obj is not None else []  # a new booking has no history yet

    def get_fields(self, request: HttpRequest, obj: Booking | None = None) -> list[str]:
        if obj is None:
            return list(BookingCreateForm.Meta.fields)
        return super().get_fields(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Booking | None = None) -> list[str]:
        if obj is None:
            return []
        return [field.name for field in Booking._meta.fields]

    def save_model(self, request: HttpRequest, obj: Booking, form: forms.ModelForm, change: bool) -> None:
        if change:
            return  # every field is read-only: nothing to write behind the services' back
        data = form.cleaned_data
        booking = services.booking_create(
            customer=data["customer"],
            service=data["service"],
            scheduled_at=data["scheduled_at"],
            address=data["address"],
            latitude=data["latitude"],
            longitude=data["longitude"],
            notes=data["notes"],
        )
        obj.pk = booking.pk
        obj.__dict__.update({k: v for k, v in booking.__dict__.items() if not k.startswith("_")})

    def has_delete_permission(self, request: HttpRequest, obj: Booking | None = None) -> bool:
        return False

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        return selectors.bookings_matching(queryset, search_term), False

    @admin.action(description="Assign or re-assign a partner (goes through dispatch rules)", permissions=["change"])
    def assign_partner(self, request: HttpRequest, queryset) -> HttpResponse | None:
        form = AssignForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            partner = form.cleaned_data["partner"]
            run_for_each(
                self,
                request,
                queryset,
                lambda b: services.booking_assign(booking_id=b.pk, partner_id=partner.pk, actor=request.user),
                "Assigned",
            )
            return None
        return render(
            request,
            "admin/bookings/action_form.html",
            {
                "title": "Assign a partner",
                "form": form,
                "queryset": queryset,
                "action": "assign_partner",
            },
        )

    @admin.action(
        description="Complete selected jobs on the partner's behalf (arrived or in progress)", permissions=["change"]
    )
    def complete_bookings(self, request: HttpRequest, queryset) -> None:
        run_for_each(
            self,
            request,
            queryset,
            lambda b: services.booking_complete(booking_id=b.pk, actor=request.user),
            "Completed",
        )

    @admin.action(description="Cancel selected bookings", permissions=["change"])
    def cancel_bookings(self, request: HttpRequest, queryset) -> HttpResponse | None:
        form = CancelForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            reason = form.cleaned_data["reason"] or "Cancelled by ops"
            run_for_each(
                self,
                request,
                queryset,
                lambda b: services.booking_cancel(booking_id=b.pk, actor=request.user, reason=reason),
                "Cancelled",
            )
            return None
        return render(
            request,
            "admin/bookings/action_form.html",
            {
                "title": "Cancel bookings",
                "form": form,
                "queryset": queryset,
                "action": "cancel_bookings",
            },
        )


@admin.register(BookingStatusChange)
class BookingStatusChangeAdmin(AuditTrailAdmin):
    list_display = ("booking", "from_status", "to_status", "role", "actor", "partner", "note", "created_at")
    list_filter = ("to_status", "role")
    search_fields = ("booking__number",)


@admin.register(BookingRejection)
class BookingRejectionAdmin(AuditTrailAdmin):
    list_display = ("booking", "partner", "reason", "created_at")
    search_fields = ("booking__number", "partner__name")
    readonly_fields = ("booking", "partner", "reason", "created_at")
