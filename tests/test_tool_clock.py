"""The world clock tool: city and zone lookup, DST-aware times, and the Pipecat wrapper."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from pipecat.adapters.llm.schemas.direct_function import DirectFunctionWrapper

from bots.tools.clock import CITY_TIME_ZONES, current_time, get_current_time
from testkit.tool_calls import result_of

pytestmark = pytest.mark.unit

# Wednesday 25 November 2026, 13:15 UTC.
NOVEMBER_INSTANT = datetime(2026, 11, 25, 13, 15, tzinfo=UTC)


def test_tokyo_at_a_fixed_instant_is_nine_hours_ahead_of_utc() -> None:
    assert current_time("Tokyo", NOVEMBER_INSTANT) == {
        "place": "Tokyo",
        "timezone": "Asia/Tokyo",
        "time": "22:15",
        "date": "2026-11-25",
        "weekday": "Wednesday",
        "utc_offset": "+09:00",
    }


def test_tokyo_has_no_daylight_saving_time_in_summer() -> None:
    result = current_time("Tokyo", datetime(2026, 7, 1, 0, 0, tzinfo=UTC))
    assert (result["time"], result["utc_offset"]) == ("09:00", "+09:00")


@pytest.mark.parametrize(
    ("instant", "time", "date", "weekday", "offset"),
    [
        (datetime(2026, 1, 15, 12, 0, tzinfo=UTC), "07:00", "2026-01-15", "Thursday", "-05:00"),
        (datetime(2026, 7, 1, 12, 0, tzinfo=UTC), "08:00", "2026-07-01", "Wednesday", "-04:00"),
        # Late evening in New York is already the next day in UTC.
        (datetime(2026, 3, 8, 3, 30, tzinfo=UTC), "22:30", "2026-03-07", "Saturday", "-05:00"),
        # Half an hour after DST began (2 am local on 8 March 2026, 07:00 UTC).
        (datetime(2026, 3, 8, 7, 30, tzinfo=UTC), "03:30", "2026-03-08", "Sunday", "-04:00"),
    ],
)
def test_new_york_follows_daylight_saving_time_and_the_local_date(
    instant: datetime, time: str, date: str, weekday: str, offset: str
) -> None:
    result = current_time("New York", instant)
    assert result["timezone"] == "America/New_York"
    assert (result["time"], result["date"], result["weekday"], result["utc_offset"]) == (
        time,
        date,
        weekday,
        offset,
    )


def test_a_quarter_hour_offset_is_formatted_with_minutes() -> None:
    result = current_time("Kathmandu", NOVEMBER_INSTANT)
    assert (result["time"], result["utc_offset"]) == ("19:00", "+05:45")


@pytest.mark.parametrize(
    "spelling",
    ["Tokyo", "tokyo", "  TOKYO  ", "ToKyO", "Tokyo, Japan", "Asia/Tokyo", "asia/tokyo"],
)
def test_tokyo_is_found_whatever_the_case_and_spacing(spelling: str) -> None:
    assert current_time(spelling, NOVEMBER_INSTANT)["timezone"] == "Asia/Tokyo"


@pytest.mark.parametrize(
    "spelling", ["São Paulo", "Sao Paulo", "SAO PAULO", "são paulo", "sao_paulo", "São-Paulo"]
)
def test_city_lookup_ignores_accents(spelling: str) -> None:
    result = current_time(spelling, NOVEMBER_INSTANT)
    assert (result["place"], result["timezone"]) == ("São Paulo", "America/Sao_Paulo")


@pytest.mark.parametrize(
    ("spelling", "zone"),
    [
        ("new york", "America/New_York"),
        ("New-York", "America/New_York"),
        ("san francisco", "America/Los_Angeles"),
        ("Mumbai", "Asia/Kolkata"),
        ("India", "Asia/Kolkata"),
        ("bogota", "America/Bogota"),
        ("ZURICH", "Europe/Zurich"),
    ],
)
def test_city_names_map_to_their_iana_zone(spelling: str, zone: str) -> None:
    assert current_time(spelling, NOVEMBER_INSTANT)["timezone"] == zone


@pytest.mark.parametrize("spelling", ["utc", "UTC", "Utc", "GMT"])
def test_utc_is_accepted_in_any_case(spelling: str) -> None:
    result = current_time(spelling, NOVEMBER_INSTANT)
    assert (result["time"], result["utc_offset"]) == ("13:15", "+00:00")


def test_an_iana_zone_outside_the_city_table_is_found_by_its_name_or_its_city() -> None:
    assert current_time("Europe/Lisbon", NOVEMBER_INSTANT)["place"] == "Lisbon"
    assert current_time("america/argentina/buenos aires", NOVEMBER_INSTANT)["place"] == (
        "Buenos Aires"
    )
    kolkata = current_time("kolkata", NOVEMBER_INSTANT)
    assert (kolkata["timezone"], kolkata["time"]) == ("Asia/Kolkata", "18:45")


def test_a_spoken_utc_offset_means_ahead_of_utc_not_the_inverted_etc_gmt_sign() -> None:
    ahead = current_time("UTC+5:30", NOVEMBER_INSTANT)
    behind = current_time("gmt -3", NOVEMBER_INSTANT)
    assert (ahead["time"], ahead["utc_offset"]) == ("18:45", "+05:30")
    assert (behind["time"], behind["utc_offset"]) == ("10:15", "-03:00")


@pytest.mark.parametrize("place", ["Atlantis", "Mars/Olympus", "UTC+15", "", "   "])
def test_an_unknown_place_is_an_error_result_not_an_exception(place: str) -> None:
    assert current_time(place, NOVEMBER_INSTANT) == {
        "error": f"Unknown city or time zone: {place!r}. "
        "Try a major city or an IANA zone like Europe/Paris."
    }


def test_the_error_for_atlantis_reads_as_documented() -> None:
    assert current_time("Atlantis", NOVEMBER_INSTANT) == {
        "error": "Unknown city or time zone: 'Atlantis'. "
        "Try a major city or an IANA zone like Europe/Paris."
    }


@pytest.mark.parametrize("place", ["../../etc/passwd", "/etc/localtime", "x" * 500])
def test_path_like_or_huge_input_never_reaches_the_file_system(place: str) -> None:
    assert "error" in current_time(place, NOVEMBER_INSTANT)


def test_a_naive_instant_is_taken_as_utc() -> None:
    naive = datetime(2026, 11, 25, 13, 15)
    assert current_time("Tokyo", naive) == current_time("Tokyo", NOVEMBER_INSTANT)


def test_every_city_in_the_table_names_a_real_time_zone() -> None:
    for name, zone in CITY_TIME_ZONES.items():
        assert ZoneInfo(zone).key == zone, name


def test_the_city_table_covers_the_major_cities_users_ask_about() -> None:
    wanted = [
        "Tokyo", "New York", "London", "Paris", "Berlin", "Sydney", "San Francisco",
        "Los Angeles", "Mumbai", "Delhi", "India", "Beijing", "Shanghai", "Singapore", "Dubai",
        "Moscow", "São Paulo", "Sao Paulo", "Mexico City", "Toronto", "Cairo", "Lagos",
        "Nairobi", "Seoul", "Hong Kong", "Istanbul", "Madrid", "Rome", "Amsterdam", "Chicago",
        "Denver", "Honolulu", "UTC",
    ]  # fmt: skip
    for city in wanted:
        assert "error" not in current_time(city, NOVEMBER_INSTANT), city
    assert len(CITY_TIME_ZONES) >= 40


def test_the_schema_pipecat_derives_names_the_tool_and_requires_a_place() -> None:
    schema = DirectFunctionWrapper(get_current_time).to_function_schema()
    assert schema.name == "get_current_time"
    assert schema.required == ["place"]
    assert schema.properties["place"]["type"] == "string"
    assert "Europe/Paris" in schema.properties["place"]["description"]
    assert schema.description.startswith("Get the current local time")


def test_get_current_time_is_a_blocking_tool() -> None:
    assert not hasattr(get_current_time, "_pipecat_cancel_on_interruption")


async def test_the_direct_function_delivers_the_time_through_the_result_callback() -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    before = datetime.now(tokyo)
    result = await result_of(get_current_time, place="Tokyo")
    after = datetime.now(tokyo)
    assert set(result) == {"place", "timezone", "time", "date", "weekday", "utc_offset"}
    assert (result["timezone"], result["utc_offset"]) == ("Asia/Tokyo", "+09:00")
    # The call may straddle a minute (or midnight), so accept either side of it.
    assert result["time"] in {before.strftime("%H:%M"), after.strftime("%H:%M")}
    assert result["date"] in {before.date().isoformat(), after.date().isoformat()}


async def test_the_direct_function_reports_an_unknown_place_as_a_result() -> None:
    result = await result_of(get_current_time, place="Mars/Olympus")
    assert result["error"].startswith("Unknown city or time zone: 'Mars/Olympus'.")
