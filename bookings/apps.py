from django.apps import AppConfig


class BookingsConfig(AppConfig):
    name = "bookings"
    verbose_name = "Bookings"

    def ready(self) -> None:
        from bookings import services, tallies

        tallies.connect_receivers()
        services.connect_receivers()
