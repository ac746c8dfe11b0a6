"""Users: deactivating one from the admin disconnects their sockets on every process."""

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

    def save_model(self, request: HttpRequest, obj, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change and "is_active" in form.changed_data and not obj.is_active:
            services.user_sockets_disconnect(user_id=obj.pk, reason="account deactivated")
