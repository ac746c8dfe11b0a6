from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "Messages and notifications"

    def ready(self) -> None:
        from messaging.notify import connect_receivers

        connect_receivers()  # the notifications of what bookings and partners announce
