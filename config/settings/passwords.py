"""Passwords: how they are hashed (on a bounded pool) and which ones are refused."""

from config.settings.environment import env_integer, env_number

# Django's hashers (stored format, iterations, upgrade of older hashes), each run on this
# process's hashing pool (config/hashing.py): at most PASSWORD_HASH_WORKERS at once, on threads
# that yield the CPU to the event loop; past PASSWORD_HASH_QUEUE waiting, or once a request's
# hashes took PASSWORD_HASH_WAIT seconds (queued or hashing), it is refused 503 with Retry-After.
PASSWORD_HASHERS = [
    "config.hashing.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
# One per core at most, shared by the processes on the machine: WORKERS processes on C cores
# want C // WORKERS each (docs/deployment.md).
PASSWORD_HASH_WORKERS = env_integer("PASSWORD_HASH_WORKERS", "1", 1, 256)
PASSWORD_HASH_QUEUE = env_integer("PASSWORD_HASH_QUEUE", "8", 0, 100_000)
PASSWORD_HASH_WAIT = env_number("PASSWORD_HASH_WAIT", "5", 0.1, 3600)
PASSWORD_HASH_NICE = env_integer("PASSWORD_HASH_NICE", "10", 0, 19)
# Hashes one client address may have running or waiting at once; its next is refused 429 at
# once (0: no share). One address flooding a login form cannot fill the queue for everyone.
PASSWORD_HASH_PER_ADDRESS = env_integer("PASSWORD_HASH_PER_ADDRESS", "2", 0, 100_000)
# Django's validators, on every door that sets a password: sign-up (customer and partner),
# the password change, the admin's forms, createsuperuser (config/fields.py PasswordField).
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},  # 8
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
