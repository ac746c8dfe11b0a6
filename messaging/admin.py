from django.contrib import admin

from config.admin_actions import AuditTrailAdmin
from messaging.models import Message, Notification


@admin.register(Message)
class MessageAdmin(AuditTrailAdmin):
    list_display = ("id", "sender", "recipient", "booking", "short_body", "created_at", "read_at")
    list_filter = ("created_at",)
    search_fields = ("body", "sender__username", "recipient__username", "booking__number")
    raw_id_fields = ("sender", "recipient", "booking")
    readonly_fields = ("sender", "recipient", "booking", "body", "client_message_id", "created_at", "read_at")

    @admin.display(description="message")
    def short_body(self, obj: Message) -> str:
        return obj.body[:60]


@admin.register(Notification)
class NotificationAdmin(AuditTrailAdmin):
    """What a user was told, and when: viewable, never rewritten or deleted here."""

    list_display = ("id", "user", "type", "title", "created_at", "read_at")
    list_filter = ("type", "created_at")
    search_fields = ("title", "body", "user__username")
    readonly_fields = ("user", "type", "title", "body", "data", "created_at", "read_at")
