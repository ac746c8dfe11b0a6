from django.urls import path

from dashboard import apis

urlpatterns = [
    path("dashboard/stats/", apis.StatsApi.as_view(), name="dashboard-stats"),
    path("dashboard/map/", apis.CockpitMapApi.as_view(), name="dashboard-map"),
    path("dashboard/timeline/", apis.CockpitTimelineApi.as_view(), name="dashboard-timeline"),
]
