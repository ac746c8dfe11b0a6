from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "Messages and notifications"

    def ready(self) -> None:
        from messaging import demo, notify

        notify.connect_receivers()  # the notifications of what bookings and partners announce
        demo.connect_receivers()  # seed_demo's open safety alert and finished job with its trace
