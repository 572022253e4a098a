"""Repository-wide pytest configuration (core, adapters and cross-package tests)."""

from __future__ import annotations

from hypothesis import HealthCheck, settings


# Property tests check behaviour, never speed: on a loaded 2-core machine Hypothesis'
# per-example deadline and its slow-generation health check only make them flaky.
settings.register_profile("pasarela", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("pasarela")
