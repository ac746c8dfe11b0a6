"""Users: deactivating or demoting one disconnects their sockets on every process (``partners.access``)."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.http import HttpRequest

from config.admin_actions import run_for_each
from dashboard import services

User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class OpsUserAdmin(UserAdmin):
    actions = ["deactivate"]

    @admin.action(description="Deactivate selected users (disconnects them)")
    def deactivate(self, request: HttpRequest, queryset) -> None:
        run_for_each(
            self, request, queryset, lambda u: services.user_deactivate(user_id=u.pk, actor=request.user), "Deactivated"
        )
