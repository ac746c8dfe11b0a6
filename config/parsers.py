"""The REST API's request parsers (settings: ``DEFAULT_PARSER_CLASSES``)."""

import logging
from typing import Any

from rest_framework import exceptions as drf_exceptions
from rest_framework.parsers import JSONParser

from config.parsing import is_valid_text

logger = logging.getLogger(__name__)

# No input of the contract nests past a few levels; deeper is refused (contract 10.1) before any
# serializer, renderer or error message walks it recursively.
MAX_JSON_DEPTH = 32


class StrictJSONParser(JSONParser):
    """DRF's JSON parser, refusing with a 400 ``VALIDATION_ERROR`` (and one log line, no traceback):

    - strings that are not Unicode (lone surrogates);
    - a document nested deeper than ``MAX_JSON_DEPTH`` (``[[[[...``: past Python's recursion
      limit the decoder itself raises ``RecursionError``, which DRF would let through as a 500).
    """

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            data = None  # too deep for the decoder: refused below like any other too deep
            too_deep = True
        else:
            too_deep = depth_exceeds(data, MAX_JSON_DEPTH)
        if too_deep:
            request = (parser_context or {}).get("request")
            logger.warning(
                "refused a JSON body nested deeper than %d levels: %s %s",
                MAX_JSON_DEPTH,
                getattr(request, "method", "?"),
                getattr(request, "path", "?"),
            )
            raise drf_exceptions.ParseError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        if not is_valid_text(data):
            raise drf_exceptions.ParseError("strings must be valid Unicode (no lone surrogates)")
        return data


def depth_exceeds(value: Any, limit: int) -> bool:
    """Whether arrays and objects in ``value`` nest deeper than ``limit`` (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False
