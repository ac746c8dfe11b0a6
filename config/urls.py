from django.contrib import admin
from django.urls import include, path
from drf_spectacular.utils import extend_schema, extend_schema_view
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from config import asyncapi, health, metrics, tokens
from config.throttling import AuthRateThrottle, LoginRateThrottle, WriteRateThrottle, throttled
from dashboard import views as cockpit_views

AUTH_THROTTLE = {"throttle_classes": [AuthRateThrottle, WriteRateThrottle]}
# A password check: per address and per username, before the hash (contract 10.1).
LOGIN_THROTTLE = {"throttle_classes": [AuthRateThrottle, LoginRateThrottle, WriteRateThrottle]}
# Login and refresh take no credentials: the schema says so.
TokenObtain = extend_schema_view(post=extend_schema(auth=[]))(TokenObtainPairView)
TokenRefresh = extend_schema_view(post=extend_schema(auth=[]))(TokenRefreshView)

api = [
    path("auth/token/", TokenObtain.as_view(**LOGIN_THROTTLE), name="token"),
    path("auth/token/refresh/", TokenRefresh.as_view(**AUTH_THROTTLE), name="token-refresh"),
    path("auth/logout/", tokens.LogoutView.as_view(), name="logout"),
    path("auth/password/", tokens.PasswordChangeView.as_view(), name="password-change"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("asyncapi.json", asyncapi.asyncapi_json, name="asyncapi-json"),
    path("asyncapi.yaml", asyncapi.asyncapi_yaml, name="asyncapi-yaml"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("", include("bookings.urls")),
    path("", include("partners.urls")),
    path("", include("messaging.urls")),
    path("", include("dashboard.urls")),
]

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("admin/dashboard/", cockpit_views.cockpit, name="cockpit"),
    path("admin/dashboard/token/", cockpit_views.cockpit_token, name="cockpit-token"),
    # The admin's login form checks a password: throttled as the API's login is.
    path("admin/login/", throttled(admin.site.login)),
    path("admin/", admin.site.urls),
    path("api/", include(api)),
]

handler404 = "config.api.not_found"
handler500 = "config.api.server_error"
