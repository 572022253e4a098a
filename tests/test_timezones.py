"""Nothing time-zone dependent happens at import, and Lima time needs no zone files."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

from pasarela.timezones import LIMA


# Run in a fresh interpreter that can find no time-zone database at all: no system
# zone files (an empty TZPATH) and no tzdata package.
NO_TZ_DATABASE = """
import sys, zoneinfo
sys.modules["tzdata"] = None
zoneinfo.reset_tzpath([])
try:
    zoneinfo.ZoneInfo("America/Lima")
except zoneinfo.ZoneInfoNotFoundError:
    pass
else:
    raise SystemExit("the test could not hide the time-zone database")
from datetime import datetime, UTC
import pasarela, pasarela.api, pasarela.routing, pasarela.web.pay_page
from pasarela.timezones import LIMA
print(datetime(2026, 12, 1, 17, 0, tzinfo=UTC).astimezone(LIMA).isoformat())
"""


def test_import_works_without_a_time_zone_database() -> None:
    result = subprocess.run([sys.executable, "-c", NO_TZ_DATABASE], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "2026-12-01T12:00:00-05:00"


def test_lima_is_utc_minus_five_all_year() -> None:
    for month in (1, 4, 7, 10):
        moment = datetime(2026, month, 15, 12, tzinfo=UTC).astimezone(LIMA)
        assert moment.utcoffset() is not None
        assert moment.utcoffset().total_seconds() == -5 * 3600
        assert moment.hour == 7
