from django.urls import path

from dashboard import apis

urlpatterns = [
    path("bookings/<uuid:booking_id>/trace/", apis.BookingTraceApi.as_view(), name="booking-trace"),
    path("dashboard/stats/", apis.StatsApi.as_view(), name="dashboard-stats"),
    path("dashboard/map/", apis.CockpitMapApi.as_view(), name="dashboard-map"),
    path("dashboard/timeline/", apis.CockpitTimelineApi.as_view(), name="dashboard-timeline"),
]
