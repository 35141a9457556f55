"""How ``m3ter-mock serve`` writes its log (``--log-format text|json``).

``json``: one JSON object per line, for log collectors. Every record has ``time`` (UTC,
ISO 8601, milliseconds), ``level``, ``logger`` and ``message``; an access line adds
``method``, ``path``, ``status`` and ``durationMs`` (what the text line says, no more: never a
header, body or query string, and the path as the text line logs it, so a download URL's
token stays out). A traceback is one string field, so a record is still one line."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(name)s %(message)s"
# The attribute the access log puts its fields in (``extra={ACCESS_FIELDS: {...}}``).
ACCESS_FIELDS = "access"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")
                    .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, ACCESS_FIELDS, None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        # ensure_ascii: a path or message with control or odd characters stays on one line.
        return json.dumps(entry, ensure_ascii=True, default=str)


def formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter()
    if log_format == "text":
        return logging.Formatter(TEXT_FORMAT)
    raise ValueError(f"{log_format!r} is not a log format; one of {', '.join(FORMATS)}")
