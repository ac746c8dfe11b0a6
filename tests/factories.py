"""factory_boy factories for the product's models."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from bookings.models import Booking, Service
from partners.models import KycStatus, Partner

CITY = (28.6139, 77.2090)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.LazyAttribute(lambda o: o.username.title())
    password = factory.django.Password("password123")


class StaffFactory(UserFactory):
    is_staff = True
    username = factory.Sequence(lambda n: f"staff{n}")


class ServiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Service

    name = factory.Sequence(lambda n: f"Service {n}")
    price = Decimal("999.00")


class PartnerFactory(factory.django.DjangoModelFactory):
    """An approved, available, online partner near the city centre."""

    class Meta:
        model = Partner
        skip_postgeneration_save = True

    user = factory.SubFactory(UserFactory, username=factory.Sequence(lambda n: f"partner{n}"))
    name = factory.LazyAttribute(lambda o: o.user.first_name)
    phone = "+91-8000000000"
    kyc_status = KycStatus.APPROVED
    last_latitude = CITY[0]
    last_longitude = CITY[1]
    online_until = factory.LazyFunction(lambda: timezone.now() + timedelta(minutes=5))

    @factory.post_generation
    def services(self, create, extracted, **kwargs):
        if create and extracted:
            self.services.set(extracted)


class BookingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Booking

    number = factory.Sequence(lambda n: f"BK{n:06d}")
    customer = factory.SubFactory(UserFactory)
    service = factory.SubFactory(ServiceFactory)
    scheduled_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=2))
    address = "1 Test Street"
    latitude = CITY[0]
    longitude = CITY[1]
    amount = Decimal("999.00")

    @classmethod
    def _create(cls, model_class: type, *args: Any, **kwargs: Any) -> Booking:
        """Counted in the dashboard's tallies like a booking the services insert."""
        from bookings import tallies

        booking = super()._create(model_class, *args, **kwargs)
        tallies.booking_added(booking)
        return booking


def book(customer, service, *, latitude: float = 28.61, longitude: float = 77.2):
    """A booking made the way a customer makes one: through the service (dispatch, events)."""
    from bookings.services import booking_create

    return booking_create(
        customer=customer,
        service=service,
        scheduled_at=timezone.now() + timedelta(hours=1),
        address="1 Main St",
        latitude=latitude,
        longitude=longitude,
    )
