"""Settings the hot paths read as plain attributes (``config.hot_settings``) follow a change."""

from config.hot_settings import hot
from config.realtime.limits import RateLimiter


def test_a_hot_setting_follows_each_override(settings):
    radius = hot.ARRIVAL_RADIUS_METERS  # read once: a plain attribute from now on
    for changed in (radius + 50, radius + 70):
        settings.ARRIVAL_RADIUS_METERS = changed
        assert changed == hot.ARRIVAL_RADIUS_METERS


def test_a_rate_limit_changed_while_the_process_runs_is_the_one_counted(settings):
    settings.REDIS_URL = ""  # counted in this process
    limiter = RateLimiter()
    limiter.hit(1, "location:update")  # the limit as the settings first had it, read once
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "location:update": (5, 3600.0)}
    assert limiter.limit_of("location:update") == (5, 3600.0)
