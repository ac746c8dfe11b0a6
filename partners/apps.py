from django.apps import AppConfig


class PartnersConfig(AppConfig):
    name = "partners"
    verbose_name = "Partners"

    def ready(self) -> None:
        from config.production import on_start_check
        from partners.access import connect_receivers
        from partners.demo import demo_logins_warning

        connect_receivers()
        on_start_check(demo_logins_warning)  # a production server names demo logins at start
