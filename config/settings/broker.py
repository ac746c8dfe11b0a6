"""Redis: the servers (``REDIS_URL``), the cache on the first, and the channel layer over all."""

import os

from config.settings.environment import env_list

# One Redis, or several separated by commas. Rooms' pub/sub is spread over all of them (by
# a hash of the room's group); the state that needs one place (the recovery log, rate
# limits, the cache) lives on the first. See docs/deployment.md, "A sharded broker".
# Sorted: every process must place a room on the same server and keep the log on the same
# one, so hosts whose operators listed the servers in another order still agree.
REDIS_URLS = sorted(env_list("REDIS_URL", ""))
REDIS_URL = REDIS_URLS[0] if REDIS_URLS else ""

# The cache: REST throttle counts, shared figures.
CACHES = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            # A Redis that stops answering (paused, partitioned) fails a request in half a second
            # instead of holding its thread for ever.
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

if REDIS_URL:
    # Pub/sub layer: broadcast fan-out with no per-channel capacity to overflow
    # and no group expiry to outlive (see docs/deployment.md, "Which channels-redis layer").
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": REDIS_URLS, "prefix": os.environ.get("CHANNELS_PREFIX", "hs")},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
