"""Peru's time, with no time-zone database needed.

Peru keeps UTC-5 all year (no daylight saving since 1994), so Lima time is a fixed
offset: nothing here reads the system's zone files at import or later, which keeps
``import pasarela`` working where there are none (Windows, slim containers). Other
zones (a settlement file's ``timezone`` option) are looked up with :mod:`zoneinfo`
when used, backed by the ``tzdata`` package where the system has no database.
"""

from __future__ import annotations

from datetime import timedelta, timezone, tzinfo
from typing import Final


__all__ = ["LIMA"]

#: Lima (``America/Lima``): UTC-05:00 all year.
LIMA: Final[tzinfo] = timezone(timedelta(hours=-5), "America/Lima")
