"""World clock tool: the current time in a city or IANA time zone.

Language models do not know what time it is, and they are poor at time-zone arithmetic
(daylight saving time especially), so the assistant asks this tool instead of guessing.
Everything is computed offline from the tz database through :mod:`zoneinfo`: the system
database (``/usr/share/zoneinfo``) when present, else the ``tzdata`` package if installed.

The pure logic lives in :func:`current_time`, which takes the instant as an argument so
tests can pin it; :func:`get_current_time` is the Pipecat direct function the model calls.
"""

import re
import unicodedata
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from loguru import logger
from pipecat.services.llm_service import FunctionCallParams

__all__ = ["CITY_TIME_ZONES", "current_time", "get_current_time"]

# Longest place name we try to resolve; anything longer is not a city and not a zone.
_MAX_PLACE_CHARS = 100

_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

# Display name -> IANA zone. Deliberately small: the model usually passes a well-known city,
# and anything missing here can still be reached by its IANA name or the zone's own city
# ("Kolkata", "Vancouver"). Only places with a single time zone are listed, so that a
# country such as the USA (six zones) is never answered with one arbitrary clock.
CITY_TIME_ZONES: dict[str, str] = {
    # Asia and Oceania
    "Tokyo": "Asia/Tokyo",
    "Osaka": "Asia/Tokyo",
    "Japan": "Asia/Tokyo",
    "Seoul": "Asia/Seoul",
    "South Korea": "Asia/Seoul",
    "Beijing": "Asia/Shanghai",
    "Shanghai": "Asia/Shanghai",
    "China": "Asia/Shanghai",
    "Hong Kong": "Asia/Hong_Kong",
    "Taipei": "Asia/Taipei",
    "Singapore": "Asia/Singapore",
    "Bangkok": "Asia/Bangkok",
    "Jakarta": "Asia/Jakarta",
    "Manila": "Asia/Manila",
    "Mumbai": "Asia/Kolkata",
    "Delhi": "Asia/Kolkata",
    "New Delhi": "Asia/Kolkata",
    "Bangalore": "Asia/Kolkata",
    "Bengaluru": "Asia/Kolkata",
    "India": "Asia/Kolkata",
    "Karachi": "Asia/Karachi",
    "Dhaka": "Asia/Dhaka",
    "Kathmandu": "Asia/Kathmandu",
    "Dubai": "Asia/Dubai",
    "Riyadh": "Asia/Riyadh",
    "Tehran": "Asia/Tehran",
    "Jerusalem": "Asia/Jerusalem",
    "Tel Aviv": "Asia/Jerusalem",
    "Sydney": "Australia/Sydney",
    "Melbourne": "Australia/Melbourne",
    "Auckland": "Pacific/Auckland",
    # Europe
    "London": "Europe/London",
    "United Kingdom": "Europe/London",
    "UK": "Europe/London",
    "England": "Europe/London",
    "Dublin": "Europe/Dublin",
    "Lisbon": "Europe/Lisbon",
    "Madrid": "Europe/Madrid",
    "Barcelona": "Europe/Madrid",
    "Paris": "Europe/Paris",
    "France": "Europe/Paris",
    "Amsterdam": "Europe/Amsterdam",
    "Brussels": "Europe/Brussels",
    "Berlin": "Europe/Berlin",
    "Munich": "Europe/Berlin",
    "Frankfurt": "Europe/Berlin",
    "Germany": "Europe/Berlin",
    "Zurich": "Europe/Zurich",
    "Vienna": "Europe/Vienna",
    "Rome": "Europe/Rome",
    "Milan": "Europe/Rome",
    "Stockholm": "Europe/Stockholm",
    "Warsaw": "Europe/Warsaw",
    "Athens": "Europe/Athens",
    "Istanbul": "Europe/Istanbul",
    "Kyiv": "Europe/Kyiv",
    "Moscow": "Europe/Moscow",
    # Africa
    "Cairo": "Africa/Cairo",
    "Lagos": "Africa/Lagos",
    "Nairobi": "Africa/Nairobi",
    "Johannesburg": "Africa/Johannesburg",
    # Americas
    "New York": "America/New_York",
    "New York City": "America/New_York",
    "NYC": "America/New_York",
    "Boston": "America/New_York",
    "Washington": "America/New_York",
    "Miami": "America/New_York",
    "Toronto": "America/Toronto",
    "Montreal": "America/Toronto",
    "Chicago": "America/Chicago",
    "Houston": "America/Chicago",
    "Dallas": "America/Chicago",
    "Mexico City": "America/Mexico_City",
    "Denver": "America/Denver",
    "Phoenix": "America/Phoenix",
    "Los Angeles": "America/Los_Angeles",
    "LA": "America/Los_Angeles",
    "San Francisco": "America/Los_Angeles",
    "SF": "America/Los_Angeles",
    "Seattle": "America/Los_Angeles",
    "Vancouver": "America/Vancouver",
    "Anchorage": "America/Anchorage",
    "Honolulu": "Pacific/Honolulu",
    "Hawaii": "Pacific/Honolulu",
    "São Paulo": "America/Sao_Paulo",
    "Rio de Janeiro": "America/Sao_Paulo",
    "Buenos Aires": "America/Argentina/Buenos_Aires",
    "Bogotá": "America/Bogota",
    "Lima": "America/Lima",
    # Not places, but what people say
    "UTC": "UTC",
    "GMT": "UTC",
    "Zulu": "UTC",
}

# "UTC+9", "gmt -05:30", "UTC+5:45". Handled before the tz database because the POSIX-style
# IANA names have inverted signs ("Etc/GMT+5" is five hours *behind* UTC), which is exactly
# the opposite of what a person saying "GMT plus five" means.
_OFFSET_RE = re.compile(r"^(?:utc|gmt)\s*([+-])\s*(\d{1,2})(?:\s*:?\s*(\d{2}))?$")


def _strip_accents(text: str) -> str:
    """Drop combining marks, so "São" and "Sao" compare equal."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _fold(text: str) -> str:
    """Fold case and accents and collapse punctuation, so "São_PAULO" equals "Sao Paulo".

    Speech-to-text and models spell places inconsistently, so city lookups compare folded
    keys.
    """
    return re.sub(r"[^0-9a-z]+", " ", _strip_accents(text).casefold()).strip()


def _fold_zone(text: str) -> str:
    """Fold an IANA-style name but keep "/", "+" and "-", which carry meaning there.

    "asia/tokyo" and "America/New York" find "Asia/Tokyo" and "America/New_York", while
    "Etc/GMT+5" and "Etc/GMT-5" stay distinct.
    """
    return re.sub(r"\s+", "_", _strip_accents(text).casefold().strip())


@cache
def _city_index() -> dict[str, tuple[str, str]]:
    """Folded city name -> (display name, zone), built once."""
    return {_fold(name): (name, zone) for name, zone in CITY_TIME_ZONES.items()}


@cache
def _zone_index() -> tuple[dict[str, str], dict[str, str]]:
    """Index the tz database by folded full key and by folded last segment.

    The second index lets "Kolkata" or "Vancouver" work without being in the city table.
    Segments shared by several zones are dropped rather than guessed, and ``Etc/`` zones are
    left out of it because of their inverted signs.

    Returns:
        ``(by_key, by_city)`` mappings from folded names to canonical zone keys.
    """
    zones = sorted(available_timezones())
    by_key = {_fold_zone(zone): zone for zone in zones}
    by_city: dict[str, str] = {}
    ambiguous: set[str] = set()
    for zone in zones:
        if "/" not in zone or zone.startswith("Etc/"):
            continue
        segment = _fold(zone.rsplit("/", 1)[1])
        if segment in by_city and by_city[segment] != zone:
            ambiguous.add(segment)
        by_city.setdefault(segment, zone)
    for segment in ambiguous:
        del by_city[segment]
    return by_key, by_city


def _resolve(place: str) -> tuple[str, str, tzinfo] | None:
    """Turn a user-supplied place into ``(display name, zone name, tzinfo)``, or None."""
    folded = _fold(place)
    if not folded or len(place) > _MAX_PLACE_CHARS:
        return None

    offset = _OFFSET_RE.match(place.strip().casefold())
    if offset:
        sign, hours, minutes = offset.group(1), int(offset.group(2)), int(offset.group(3) or 0)
        if hours > 14 or minutes >= 60:
            return None
        delta = timedelta(hours=hours, minutes=minutes)
        label = "UTC" + _format_offset(-delta if sign == "-" else delta)
        return label, label, timezone(-delta if sign == "-" else delta)

    city = _city_index().get(folded)
    if city is None and "," in place:
        # "Paris, France" -> "Paris".
        city = _city_index().get(_fold(place.split(",", 1)[0]))
    if city is not None:
        name, zone = city
        return name, zone, ZoneInfo(zone)

    by_key, by_city = _zone_index()
    zone_key = by_key.get(_fold_zone(place)) or by_city.get(folded)
    if zone_key is None:
        return None
    # "Asia/Tokyo" -> "Tokyo", "America/Argentina/Buenos_Aires" -> "Buenos Aires", "UTC" -> "UTC".
    name = zone_key.rsplit("/", 1)[-1].replace("_", " ")
    return name, zone_key, ZoneInfo(zone_key)


def _format_offset(offset: timedelta | None) -> str:
    """Format a UTC offset as ``+09:00`` / ``-05:30`` (the way people read offsets aloud)."""
    total_minutes = int((offset or timedelta(0)).total_seconds() // 60)
    sign = "-" if total_minutes < 0 else "+"
    hours, minutes = divmod(abs(total_minutes), 60)
    return f"{sign}{hours:02d}:{minutes:02d}"


def current_time(place: str, now: datetime | None = None) -> dict[str, Any]:
    """Compute the wall-clock time in a city or time zone.

    Kept free of Pipecat so it can be tested against a fixed instant.

    Args:
        place: A city from :data:`CITY_TIME_ZONES` (case, accent and spacing are ignored),
            an IANA zone such as ``"Asia/Tokyo"`` or ``"utc"``, a zone's own city such as
            ``"Kolkata"``, or a fixed offset such as ``"UTC+5:30"``.
        now: The instant to convert; defaults to the current time. A naive datetime is
            taken to be UTC.

    Returns:
        ``{"place", "timezone", "time" (HH:MM, 24 h), "date" (ISO), "weekday",
        "utc_offset"}``, or ``{"error": ...}`` for a place we cannot resolve. An error is a
        result rather than an exception because the model should read it and ask again.
    """
    instant = now if now is not None else datetime.now(UTC)
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)

    try:
        resolved = _resolve(place)
    except ZoneInfoNotFoundError:
        # The city table names a zone but no tz database is installed (slim container
        # without /usr/share/zoneinfo or the tzdata package).
        logger.error("No time zone database found; install the 'tzdata' package")
        return {"error": "The time zone database is not available on this server."}
    if resolved is None:
        return {
            "error": f"Unknown city or time zone: {place!r}. "
            "Try a major city or an IANA zone like Europe/Paris."
        }

    name, zone_name, zone = resolved
    local = instant.astimezone(zone)
    return {
        "place": name,
        "timezone": zone_name,
        "time": local.strftime("%H:%M"),
        "date": local.date().isoformat(),
        "weekday": _WEEKDAYS[local.weekday()],
        "utc_offset": _format_offset(local.utcoffset()),
    }


async def get_current_time(params: FunctionCallParams, place: str) -> None:
    """Get the current local time, date and weekday in a city or time zone.

    Call this whenever the user asks what time or day it is somewhere, or needs a
    time-zone difference; never guess the time.

    Args:
        place: A city name such as "Tokyo" or "New York", or an IANA time zone such as
            "Europe/Paris" or "UTC".
    """
    result = current_time(place)
    logger.debug(f"get_current_time({place!r}) -> {result}")
    await params.result_callback(result)
