"""Tools for testing pasarela and provider plugins.

- :mod:`pasarela.testing.fake`: ``FakeProvider`` and its in-memory ``FakeGateway``.
- :mod:`pasarela.testing.conformance`: ``ProviderConformance``, the base test class
  every adapter subclasses.
- :mod:`pasarela.testing.cassettes`: the base vcrpy configuration that scrubs secrets.
"""

from __future__ import annotations
