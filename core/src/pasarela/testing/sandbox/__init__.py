"""The toolkit every provider's sandbox is built on.

**Sandbox** means one thing here and in every adapter: one simulated account at a
provider, held in memory, with the provider's rules, answered without HTTP. A
subclass of :class:`Sandbox` (``PagoEfectivoSandbox``, ``CulqiSandbox``,
``StripeSandbox``) keeps the provider's objects; ``create_app(**options)`` in the
adapter's ``sandbox`` package builds one and puts its HTTP face on it with
:func:`sandbox_app` (``app.state.sandbox`` is the Sandbox).

What every sandbox shares, in one place:

- :mod:`.knobs`: :class:`Knobs`, one naming and unit scheme for faults and
  behaviour (seconds for times, 0..1 for shares), extended per provider;
- :mod:`.courier`: :class:`Courier`, the one way webhooks are sent (a background
  thread with a queue), with duplicate, reorder, delay, hold and loss faults and
  retries on :class:`pasarela.retry.Backoff`;
- :mod:`.clock`: :class:`Clock`, the sandbox's time (aware UTC datetimes), moved by
  control;
- :mod:`.faults`: :class:`Faults`, one-shot faults per operation, and :func:`hold`;
- :mod:`.control`: the shared ``/_control`` routes (knobs, clock, faults, webhook
  log, flush, replay, reset) and :class:`ControlRoute` for a sandbox's own;
- :mod:`.runner`: ``pasarela sandbox NAME`` and ``python -m pasarela_x.sandbox``,
  with the start-up :func:`banner` (URL, credentials, control routes, the
  ``pasarela.toml`` snippet);
- :mod:`.served`: :func:`serve_sandbox` and :class:`ServedSandbox`, a sandbox on
  loopback for a test (the pytest plugin's ``pasarela_sandbox`` hands these out).

``docs/sandboxes.md`` is the guide for plugin authors.
"""

from __future__ import annotations

from pasarela.testing.sandbox.app import sandbox_app
from pasarela.testing.sandbox.banner import banner, toml_table
from pasarela.testing.sandbox.base import Credential, Sandbox
from pasarela.testing.sandbox.clock import Clock
from pasarela.testing.sandbox.control import ControlRoute, json_response, read_body
from pasarela.testing.sandbox.courier import Attempt, Courier, Delivery, Webhook
from pasarela.testing.sandbox.faults import ANY, Fault, Faults, hold
from pasarela.testing.sandbox.knobs import (
    Knobs,
    choice,
    count,
    flag,
    jsonable,
    knob,
    seconds,
    share,
    text,
)
from pasarela.testing.sandbox.served import ServedSandbox, serve_sandbox


__all__ = [
    "ANY",
    "Attempt",
    "Clock",
    "ControlRoute",
    "Courier",
    "Credential",
    "Delivery",
    "Fault",
    "Faults",
    "Knobs",
    "Sandbox",
    "ServedSandbox",
    "Webhook",
    "banner",
    "choice",
    "count",
    "flag",
    "hold",
    "json_response",
    "jsonable",
    "knob",
    "read_body",
    "sandbox_app",
    "seconds",
    "serve_sandbox",
    "share",
    "text",
    "toml_table",
]
