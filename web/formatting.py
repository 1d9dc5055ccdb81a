"""Dates and times as the reader expects them: in Vietnam's time zone, in
the page's language (Vietnamese writes dd/mm/yyyy)."""
from __future__ import annotations

from datetime import date, datetime, timezone

from flask import Flask
from flask_babel import format_date, format_datetime, get_locale

DATE_PATTERNS = {"vi": "dd/MM/yyyy", "en": "d MMM yyyy"}
TIME_PATTERN = "HH:mm"


def _pattern() -> str:
    return DATE_PATTERNS.get(get_locale().language, DATE_PATTERNS["en"])


def local_date(value: date | datetime | None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        # Stored in UTC; SQLite hands timestamps back without their zone.
        value = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return format_datetime(value, _pattern())  # converted to BABEL_DEFAULT_TIMEZONE
    return format_date(value, _pattern())


def local_datetime(value: datetime | None) -> str:
    if value is None:
        return ""
    value = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return format_datetime(value, f"{_pattern()} {TIME_PATTERN}")


def register(app: Flask) -> None:
    app.add_template_filter(local_date)
    app.add_template_filter(local_datetime)
