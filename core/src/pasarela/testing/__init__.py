"""Tools for testing pasarela and provider plugins.

- :mod:`pasarela.testing.fake`: ``FakeProvider`` and its in-memory ``FakeGateway``.
- :mod:`pasarela.testing.conformance`: ``ProviderConformance``, the base test class
  every adapter subclasses.
- :mod:`pasarela.testing.cassettes`: the base vcrpy configuration that scrubs secrets.
- :mod:`pasarela.testing.sandbox`: the toolkit every provider's sandbox is built on
  (knobs, webhook courier, clock, control routes, runner and start-up banner).
- :mod:`pasarela.testing.receiver`: a webhook receiver for tests.
- :mod:`pasarela.testing.helpers`: ``ManualClock``, ``EventRecorder``, ``serve_app``.
- :mod:`pasarela.testing.pytest_plugin`: the ``pasarela_*`` fixtures, installed as a
  pytest plugin with pasarela.
"""

from __future__ import annotations
