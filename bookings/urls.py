from django.urls import path

from bookings import apis

urlpatterns = [
    path("services/", apis.ServiceListApi.as_view(), name="services"),
    path("bookings/", apis.BookingListCreateApi.as_view(), name="bookings"),
    path("bookings/<uuid:booking_id>/", apis.BookingDetailApi.as_view(), name="booking-detail"),
    path("bookings/<uuid:booking_id>/cancel/", apis.BookingCancelApi.as_view(), name="booking-cancel"),
    path("bookings/<uuid:booking_id>/assign/", apis.BookingAssignApi.as_view(), name="booking-assign"),
    path("bookings/<uuid:booking_id>/complete/", apis.BookingCompleteApi.as_view(), name="booking-complete"),
    # bookings/<id>/trace/ is dashboard's (dashboard/urls.py, dashboard/traces.py): it reads three apps.
]
