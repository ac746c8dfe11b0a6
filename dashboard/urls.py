from django.urls import path

from dashboard import apis

urlpatterns = [path("dashboard/stats/", apis.StatsApi.as_view(), name="dashboard-stats")]
