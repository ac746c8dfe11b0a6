"""Messages between the people a booking links, and notifications."""

from django.conf import settings
from django.db import models


class Message(models.Model):
    # An increasing integer id doubles as the history cursor (?after=<id>).
    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sent_messages")
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="received_messages")
    booking = models.ForeignKey(
        "bookings.Booking", on_delete=models.SET_NULL, null=True, blank=True, related_name="messages"
    )
    body = models.TextField()
    client_message_id = models.CharField(max_length=64, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["sender", "client_message_id"],
                condition=models.Q(client_message_id__isnull=False),
                name="message_client_id_once_per_sender",
            )
        ]
        indexes = [
            models.Index(fields=["sender", "recipient", "-id"], name="message_conversation"),
            models.Index(fields=["recipient", "read_at"], name="message_unread"),
        ]

    def __str__(self) -> str:
        return f"{self.sender_id} -> {self.recipient_id}: {self.body[:40]}"


class Notification(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    type = models.CharField(max_length=40)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["user", "read_at", "-id"], name="notification_unread")]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.title}"


# A safety alert's note and the client's id for it, at most (the model, the service, the event's schema).
SAFETY_NOTE_MAX = 500
CLIENT_ALERT_ID_MAX = 64


class SafetyAlert(models.Model):
    """A call for help from a customer or a partner (contract 10.3), open until staff acknowledge it.

    ``escalation`` counts the times it went to staff (0: the first); while it is open, the
    safety clock (``messaging.safety.escalate_due``) claims it again at ``next_escalation_at``
    with a conditional UPDATE, so each escalation goes out once whichever process sweeps.
    """

    raised_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="safety_alerts")
    role = models.CharField(max_length=10)  # "customer" or "partner": the namespace it came from
    booking = models.ForeignKey(
        "bookings.Booking", on_delete=models.SET_NULL, null=True, blank=True, related_name="safety_alerts"
    )
    latitude = models.FloatField(null=True, blank=True)
    longitude = models.FloatField(null=True, blank=True)
    note = models.CharField(max_length=SAFETY_NOTE_MAX, blank=True)
    client_alert_id = models.CharField(max_length=CLIENT_ALERT_ID_MAX, null=True, blank=True)
    raised_at = models.DateTimeField()
    escalation = models.PositiveIntegerField(default=0)
    next_escalation_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["raised_by", "client_alert_id"],
                condition=models.Q(client_alert_id__isnull=False),
                name="safety_alert_client_id_once_per_user",
            )
        ]
        indexes = [
            # The safety clock's one query: open alerts that are due.
            models.Index(
                fields=["next_escalation_at"], condition=models.Q(acknowledged_at__isnull=True), name="safety_alert_due"
            ),
            models.Index(fields=["booking", "raised_at"], name="safety_alert_booking"),
        ]

    def __str__(self) -> str:
        state = "open" if self.acknowledged_at is None else "acknowledged"
        return f"SOS {self.pk} from {self.raised_by_id} ({state})"
