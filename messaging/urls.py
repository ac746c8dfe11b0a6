from django.urls import path

from messaging import apis

urlpatterns = [
    path("messages/", apis.MessageListApi.as_view(), name="messages"),
    path("messages/read/", apis.ConversationReadApi.as_view(), name="messages-read"),
    path("notifications/", apis.NotificationListApi.as_view(), name="notifications"),
    path("notifications/read-all/", apis.NotificationReadAllApi.as_view(), name="notifications-read-all"),
    path("notifications/<int:notification_id>/read/", apis.NotificationReadApi.as_view(), name="notification-read"),
    path("safety/", apis.SafetyAlertListApi.as_view(), name="safety-alerts"),
    path(
        "safety/<int:alert_id>/acknowledge/",
        apis.SafetyAlertAcknowledgeApi.as_view(),
        name="safety-alert-acknowledge",
    ),
]
