"""Accounts and partners in the Django admin. Deactivating a user, demoting staff or suspending a
partner disconnects their sockets on every process (``partners.access``)."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.http import HttpRequest

from config.admin_actions import AuditTrailAdmin, run_for_each
from partners import accounts, services
from partners.models import CustomerProfile, Earning, KycStatus, KycSubmission, Partner

User = get_user_model()
admin.site.unregister(User)


# What only a superuser grants: a staff member who may change users changes what they hold,
# not what they may do (is_staff opens /admin, the staff APIs and the staff sockets).
GRANTS = ("is_superuser", "is_staff", "groups", "user_permissions")


@admin.register(User)
class OpsUserAdmin(UserAdmin):
    """Every action needs the permission of what it changes (contract 10.2); a superuser's
    account (its form, its password) is changed by superusers only, and nobody but a
    superuser grants staff, superuser, groups or permissions, themselves included."""

    actions = ["deactivate"]

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_delete_permission(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> tuple[str, ...]:
        fields = tuple(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            fields += GRANTS
        if obj is not None and obj.pk == request.user.pk:
            fields += ("is_active",)  # nobody deactivates themselves
        return fields

    @admin.action(description="Deactivate selected users (disconnects them)", permissions=["change"])
    def deactivate(self, request: HttpRequest, queryset) -> None:
        run_for_each(
            self, request, queryset, lambda u: accounts.user_deactivate(user_id=u.pk, actor=request.user), "Deactivated"
        )


@admin.register(CustomerProfile)
class CustomerProfileAdmin(admin.ModelAdmin):
    list_display = ("user", "phone")
    search_fields = ("user__username", "user__first_name", "phone")
    raw_id_fields = ("user",)


@admin.register(Partner)
class PartnerAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "phone",
        "kyc_status",
        "is_available",
        "is_suspended",
        "rating",
        "online_until",
        "created_at",
    )
    list_filter = ("kyc_status", "is_available", "is_suspended", "services")
    search_fields = ("name", "phone", "user__username")
    filter_horizontal = ("services",)
    raw_id_fields = ("user",)
    # Who the profile belongs to, whether they are suspended, available or approved, and
    # their rating change only through the services (actions here, the partner's own app):
    # an edit here would skip KYC review, the access recheck and dispatch.
    readonly_fields = (
        "user",
        "is_suspended",
        "is_available",
        "rating",
        "kyc_status",
        "last_latitude",
        "last_longitude",
        "last_location_at",
        "online_until",
        "created_at",
    )
    actions = ["suspend", "reinstate"]

    def get_readonly_fields(self, request: HttpRequest, obj: Partner | None = None) -> tuple[str, ...]:
        if obj is None:  # a new profile names its user once
            return tuple(field for field in self.readonly_fields if field != "user")
        return self.readonly_fields

    def has_delete_permission(self, request: HttpRequest, obj: Partner | None = None) -> bool:
        return False  # earnings, history and offers point at it; suspend instead

    @admin.action(description="Suspend selected partners (disconnects them)", permissions=["change"])
    def suspend(self, request: HttpRequest, queryset) -> None:
        run_for_each(
            self,
            request,
            queryset,
            lambda p: services.partner_suspend(partner_id=p.pk, actor=request.user),
            "Suspended",
        )

    @admin.action(description="Reinstate selected partners", permissions=["change"])
    def reinstate(self, request: HttpRequest, queryset) -> None:
        run_for_each(
            self,
            request,
            queryset,
            lambda p: services.partner_suspend(partner_id=p.pk, actor=request.user, suspended=False),
            "Reinstated",
        )


@admin.register(KycSubmission)
class KycSubmissionAdmin(admin.ModelAdmin):
    list_display = ("partner", "document_type", "document_number", "status", "submitted_at", "reviewed_by")
    list_filter = ("status", "document_type")
    search_fields = ("partner__name", "document_number")
    readonly_fields = (
        "partner",
        "document_type",
        "document_number",
        "status",
        "submitted_at",
        "reviewed_at",
        "reviewed_by",
    )
    actions = ["approve", "reject"]

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # partners submit; staff decide

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # a KYC decision is part of the audit trail

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).select_related("partner", "reviewed_by")

    @admin.action(description="Approve selected KYC submissions", permissions=["change"])
    def approve(self, request: HttpRequest, queryset) -> None:
        run_for_each(
            self,
            request,
            queryset.filter(status=KycStatus.PENDING),
            lambda s: services.kyc_review(submission_id=s.pk, reviewer=request.user, approve=True),
            "Approved",
        )

    @admin.action(description="Reject selected KYC submissions", permissions=["change"])
    def reject(self, request: HttpRequest, queryset) -> None:
        run_for_each(
            self,
            request,
            queryset.filter(status=KycStatus.PENDING),
            lambda s: services.kyc_review(submission_id=s.pk, reviewer=request.user, approve=False),
            "Rejected",
        )


@admin.register(Earning)
class EarningAdmin(AuditTrailAdmin):
    list_display = ("partner", "booking", "amount", "currency", "created_at")
    list_filter = ("currency", "created_at")
    search_fields = ("partner__name", "booking__number")
    readonly_fields = ("partner", "booking", "amount", "currency", "created_at")
