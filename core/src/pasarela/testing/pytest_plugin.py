"""pasarela's pytest plugin, for host apps and provider plugins alike.

Installed with pasarela (entry point ``pytest11``: ``pasarela``), so its fixtures
are there in any project that has pasarela; every name starts with ``pasarela_`` so
none collides with a project's own.

- ``pasarela_clock``: a :class:`~pasarela.testing.helpers.ManualClock` (business
  time that the test moves by hand);
- ``pasarela_serve``: ``pasarela_serve(app) -> Served``, an ASGI app on a free
  loopback port until the test ends;
- ``pasarela_receiver``: a :class:`~pasarela.testing.receiver.WebhookReceiver` on
  loopback (one per session), emptied for each test;
- ``pasarela_sandbox``: ``pasarela_sandbox("pagoefectivo", **options)`` (or a
  ``create_app`` in place of the name) is that provider's sandbox on a free loopback
  port, as a :class:`~pasarela.testing.sandbox.ServedSandbox`, reset to its start.
  The server starts once per session for each name and options
  (``pasarela_sandbox_pool`` keeps them);
- ``pasarela_factory``: ``pasarela_factory(served, ..., providers={}, config={},
  **kwargs) -> Pasarela`` over served sandboxes, with the settings their banners
  show and a SQLite store in ``tmp_path``; closed after the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest


if TYPE_CHECKING:
    from pasarela.api import Pasarela
    from pasarela.testing.helpers import ManualClock, Served
    from pasarela.testing.receiver import WebhookReceiver
    from pasarela.testing.sandbox.served import ServedSandbox


__all__ = [
    "SandboxPool",
    "pasarela_clock",
    "pasarela_factory",
    "pasarela_receiver",
    "pasarela_receiver_server",
    "pasarela_sandbox",
    "pasarela_sandbox_pool",
    "pasarela_serve",
]


class SandboxPool:
    """Sandboxes served for a whole session, one per factory and options."""

    def __init__(self) -> None:
        self._stack = ExitStack()
        self._served: dict[tuple[Any, str], ServedSandbox] = {}

    def get(self, factory: str | Callable[..., Any], **options: Any) -> ServedSandbox:
        """The served sandbox of *factory* (a provider's name, or its ``create_app``)
        with *options*, started on first use; not reset."""
        from pasarela.testing.sandbox.runner import load_factory  # noqa: PLC0415
        from pasarela.testing.sandbox.served import serve_sandbox  # noqa: PLC0415

        key = (factory, repr(sorted(options.items())))
        if key not in self._served:
            make = load_factory(factory) if isinstance(factory, str) else factory
            self._served[key] = self._stack.enter_context(serve_sandbox(make(**options)))
        return self._served[key]

    def close(self) -> None:
        self._stack.close()
        self._served.clear()


@pytest.fixture
def pasarela_clock() -> ManualClock:
    """Business time standing still until the test moves it (``clock.now += ...``)."""
    from pasarela.testing.helpers import ManualClock  # noqa: PLC0415

    return ManualClock()


@pytest.fixture
def pasarela_serve() -> Iterator[Callable[[Any], Served]]:
    """``pasarela_serve(app)``: serve an ASGI app on loopback until the test ends."""
    from pasarela.testing.helpers import Served, serve_app  # noqa: PLC0415

    with ExitStack() as stack:
        def start(app: Any) -> Served:
            return Served(stack.enter_context(serve_app(app)), app)

        yield start


@pytest.fixture(scope="session")
def pasarela_receiver_server() -> Iterator[WebhookReceiver]:
    """The session's webhook receiver, served on loopback (see ``pasarela_receiver``)."""
    from pasarela.testing.helpers import serve_app  # noqa: PLC0415
    from pasarela.testing.receiver import WebhookReceiver  # noqa: PLC0415

    receiver = WebhookReceiver()
    with serve_app(receiver.app) as url:
        receiver.url = f"{url}/webhooks"
        yield receiver


@pytest.fixture
def pasarela_receiver(pasarela_receiver_server: WebhookReceiver) -> WebhookReceiver:
    """A loopback webhook receiver with nothing received yet, answering 200."""
    pasarela_receiver_server.clear()
    return pasarela_receiver_server


@pytest.fixture(scope="session")
def pasarela_sandbox_pool() -> Iterator[SandboxPool]:
    """The session's served sandboxes (``pasarela_sandbox`` hands them out)."""
    pool = SandboxPool()
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture
def pasarela_sandbox(pasarela_sandbox_pool: SandboxPool) -> Callable[..., ServedSandbox]:
    """``pasarela_sandbox(name_or_create_app, **options)``: the sandbox on loopback,
    reset to its start (state, faults, webhooks, clock, knobs)."""
    def start(factory: str | Callable[..., Any], **options: Any) -> ServedSandbox:
        return pasarela_sandbox_pool.get(factory, **options).reset()

    return start


@pytest.fixture
def pasarela_factory(tmp_path: Path) -> Iterator[Callable[..., Pasarela]]:
    """``pasarela_factory(*served, providers={}, config={}, **kwargs)``: a Pasarela
    whose providers are the *served* sandboxes (their ``settings()``, updated by
    ``providers[name]``; ``providers`` may add others), with a fresh SQLite store in
    ``tmp_path`` and *config*'s other sections; *kwargs* go to ``Pasarela`` (plugins,
    clock, env, transport, load_entrypoints...). Closed when the test ends."""
    from pasarela.api import Pasarela  # noqa: PLC0415

    opened: list[Pasarela] = []

    def build(*served: ServedSandbox, providers: Mapping[str, Mapping[str, Any]] | None = None,
              config: Mapping[str, Any] | None = None, **kwargs: Any) -> Pasarela:
        extra = dict(providers or {})
        tables: dict[str, dict[str, Any]] = {}
        for one in served:
            name = one.sandbox.name
            tables[name] = {**one.settings(), **extra.pop(name, {})}
        tables.update({name: dict(values) for name, values in extra.items()})
        store = f"sqlite:///{tmp_path / f'pasarela-{len(opened)}.db'}"
        given = dict(config or {})
        tables = {**given.pop("providers", {}), **tables}
        full = {"store": {"url": store}, **given, "providers": tables}
        pasarela = Pasarela(full, **kwargs)
        opened.append(pasarela)
        return pasarela

    yield build
    for pasarela in opened:
        pasarela.close()
