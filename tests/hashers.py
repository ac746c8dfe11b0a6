"""The suite's hasher: MD5 for speed, on the same bounded pool as production's (config.hashing)."""

from django.contrib.auth import hashers

from config.hashing import Bounded


class MD5PasswordHasher(Bounded, hashers.MD5PasswordHasher):
    pass
