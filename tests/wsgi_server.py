"""Serve config.wsgi on a port with the standard library (a non-ASGI Django process for tests)."""

import os
import sys
from wsgiref.simple_server import WSGIRequestHandler, make_server

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

from config.wsgi import application


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


if __name__ == "__main__":
    make_server("127.0.0.1", int(sys.argv[1]), application, handler_class=QuietHandler).serve_forever()
