"""The :class:`Sandbox` base: one simulated provider account, whatever its API."""

from __future__ import annotations

import copy
import random
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, ClassVar

import anyio
import attrs

from pasarela.testing.sandbox.clock import Clock
from pasarela.testing.sandbox.courier import Courier, Delivery, Webhook
from pasarela.testing.sandbox.faults import Fault, Faults
from pasarela.testing.sandbox.knobs import Knobs


__all__ = ["Credential", "Sandbox"]


@attrs.frozen
class Credential:
    """A value the sandbox accepts, named as the provider's setting in
    ``pasarela.toml`` (``access_key``); *note* says what else is accepted."""

    name: str
    value: str
    note: str = ""


class Sandbox:
    """One simulated account at a provider: its state and rules (in a subclass), and
    what every sandbox shares: :attr:`knobs`, :attr:`clock`, :attr:`faults`,
    :attr:`courier`, :attr:`random`, the calls counted per operation.

    A subclass declares its class attributes, keeps its state, implements the API's
    rules without HTTP, and says how its webhooks look on the wire
    (:meth:`render_webhook`); its ``create_app`` puts the HTTP face on it with
    :func:`pasarela.testing.sandbox.sandbox_app`.

    :param clock: the base of the sandbox's :class:`Clock` (default: the wall clock).
    :param seed: seeds :attr:`random` (ids, fault draws) for reproducible runs.
    :param knobs: initial knobs, by name; :meth:`reset` goes back to them.
    """

    #: The provider's name: ``pasarela sandbox NAME`` and ``[providers.NAME]``.
    name: ClassVar[str] = "sandbox"
    #: What people call it, for the start-up banner.
    title: ClassVar[str] = "a sandbox"
    #: The port ``pasarela sandbox NAME`` listens on unless told otherwise.
    default_port: ClassVar[int] = 8800
    knobs_class: ClassVar[type[Knobs]] = Knobs
    #: The operations a one-shot fault can name (counted in :attr:`calls`).
    operations: ClassVar[tuple[str, ...]] = ()
    #: The kinds of one-shot fault this sandbox plays.
    fault_kinds: ClassVar[tuple[str, ...]] = ("500",)

    def __init__(self, *, clock: Callable[[], datetime] | None = None,
                 seed: int | None = None, **knobs: Any) -> None:
        self.lock = threading.RLock()
        self.clock = Clock(clock)
        self.random = random.Random(seed)  # noqa: S311 - fault injection, not security
        self.knobs: Knobs = self.knobs_class.of(knobs)
        self.initial_knobs: Knobs = copy.deepcopy(self.knobs)
        self.faults = Faults(self.operations, self.fault_kinds)
        self.calls: dict[str, int] = dict.fromkeys(self.operations, 0)
        #: Where it is served, once known (set by the runner and the test helpers).
        self.url: str | None = None
        self.courier = Courier(render=self.render_webhook, knobs=lambda: self.knobs,
                               accepts=self.accepts_webhook, now=self.clock.now,
                               random=self.random, name=self.name)

    # --- time, knobs, faults ----------------------------------------------------------

    def now(self) -> datetime:
        """The sandbox's time (aware, UTC)."""
        return self.clock.now()

    def configure(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Set knobs by name (all or none; a bad one raises a ValidationError naming
        it); returns every knob."""
        with self.lock:
            self.knobs.update(changes)
            return self.knobs.describe()

    def add_fault(self, body: dict[str, Any]) -> Fault:
        """Queue the one-shot fault a control body describes."""
        fault = self.faults.parse(body)
        self.faults.add(fault)
        return fault

    def take_fault(self, operation: str) -> Fault | None:
        """Count a call of *operation* and return the fault it suffers, if any: a
        queued one-shot fault first, then ``fail_next``, then ``fail_rate`` (those two
        as kind ``500``: the provider's 5xx, nothing done)."""
        with self.lock:
            self.calls[operation] = self.calls.get(operation, 0) + 1
            fault = self.faults.take(operation)
            if fault is not None:
                return fault
            knobs = self.knobs
            if knobs.fail_next > 0:
                knobs.fail_next -= 1
                return Fault(operation=operation, kind="500")
            if knobs.fail_rate and self.random.random() < knobs.fail_rate:
                return Fault(operation=operation, kind="500")
        return None

    async def wait_latency(self) -> None:
        """Sleep the ``latency`` knob's seconds (called once the work is done)."""
        if self.knobs.latency > 0:
            await anyio.sleep(self.knobs.latency)

    # --- webhooks ---------------------------------------------------------------------

    def send_webhook(self, webhook: Webhook) -> list[Delivery]:
        """Hand *webhook* to the courier (faults applied); returns its deliveries."""
        return self.courier.send(webhook)

    def render_webhook(self, webhook: Webhook) -> tuple[bytes, Mapping[str, str]]:
        """The body and headers of a delivery of *webhook*, as the provider sends it
        (called at every attempt)."""
        raise NotImplementedError(f"{type(self).__name__} sends no webhooks")

    def accepts_webhook(self, status: int) -> bool:
        """Whether the receiver's *status* ends a delivery (default: any 2xx)."""
        return 200 <= status < 300

    # --- life -------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the start: the provider's state (:meth:`clear`), faults, calls,
        webhooks, clock offset, and the knobs given at creation."""
        self.courier.clear()
        with self.lock:
            self.faults.clear()
            self.calls = dict.fromkeys(self.operations, 0)
            self.clock.reset()
            self.knobs = copy.deepcopy(self.initial_knobs)
            self.clear()

    def clear(self) -> None:
        """Forget the provider's state (a subclass's objects); called by :meth:`reset`."""

    def close(self) -> None:
        """Stop the courier's thread (when the app shuts down)."""
        self.courier.close()

    # --- what the control routes and the banner show -----------------------------------

    def counts(self) -> dict[str, int]:
        """How many of each object the sandbox holds (``GET /_control``)."""
        return {}

    def credentials(self) -> list[Credential]:
        """The values a client must use (the banner and the docs show them)."""
        return []

    def settings(self, url: str) -> dict[str, Any]:
        """The provider's table in ``pasarela.toml`` for a sandbox served at *url*."""
        values: dict[str, Any] = {"environment": "sandbox", "base_url": url}
        values.update((c.name, c.value) for c in self.credentials())
        return values

    def control_error(self, error: Exception) -> tuple[int, Any] | None:
        """The status and body a control route answers for *error* (a subclass maps
        its own errors; None: not one of them)."""
        return None
