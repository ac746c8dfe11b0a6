"""The REST API's request parsers (settings: ``DEFAULT_PARSER_CLASSES``)."""

from typing import Any

from rest_framework import exceptions as drf_exceptions
from rest_framework.parsers import JSONParser

from config.parsing import is_valid_text


class StrictJSONParser(JSONParser):
    """DRF's JSON parser, refusing strings that are not Unicode (lone surrogates) with a 400."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        data = super().parse(stream, media_type, parser_context)
        if not is_valid_text(data):
            raise drf_exceptions.ParseError("strings must be valid Unicode (no lone surrogates)")
        return data
