from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "Messages and notifications"

    def ready(self) -> None:
        from messaging import demo, notify, safety

        notify.connect_receivers()  # the notifications of what bookings and partners announce
        safety.connect_receivers()  # seed_demo's open safety alert
        demo.connect_receivers()  # seed_demo's finished job with its trace
