"""``AsyncPasarela`` is ``Pasarela`` awaited: the same public names, parameters and
return types, and the same outcomes for the same scenario."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from functools import partial
from typing import Any

import anyio

from pasarela.api import AsyncPasarela, Pasarela
from pasarela.lifecycle import Status
from pasarela.model import Customer, Order
from pasarela.money import Money
from pasarela.store import Store
from pasarela.testing.fake import FakeGateway, FakePlugin
from pasarela.testing.helpers import ManualClock


#: Where the two classes differ on purpose: closing (``close`` / ``aclose``) and the
#: context manager protocol of each kind.
SYNC_ONLY = {"close", "__enter__", "__exit__"}
ASYNC_ONLY = {"aclose", "__aenter__", "__aexit__"}


def _public(cls: type) -> dict[str, Any]:
    return {name: member for name, member in inspect.getmembers(cls)
            if not name.startswith("_") or name in SYNC_ONLY | ASYNC_ONLY}


def _signature(func: Callable[..., Any]) -> tuple[list[tuple[str, Any, Any]], Any]:
    hints = typing.get_type_hints(func)
    params = [(p.name, p.kind, p.default)
              for p in inspect.signature(func).parameters.values() if p.name != "self"]
    return params, hints.get("return")


def test_the_public_surfaces_match() -> None:
    sync, asyn = _public(Pasarela), _public(AsyncPasarela)
    assert set(sync) - SYNC_ONLY == set(asyn) - ASYNC_ONLY
    for name in sorted(set(sync) - SYNC_ONLY):
        s, a = sync[name], asyn[name]
        if isinstance(inspect.getattr_static(Pasarela, name), property):
            assert isinstance(inspect.getattr_static(AsyncPasarela, name), property), name
            continue
        if name == "from_config":
            continue  # a classmethod returning its own class
        if not callable(s):
            continue
        assert inspect.iscoroutinefunction(a), f"AsyncPasarela.{name} must be a coroutine"
        assert not inspect.iscoroutinefunction(s), f"Pasarela.{name} must not be"
        s_params, s_return = _signature(s)
        a_params, a_return = _signature(a)
        # Only the transport differs in kind; operations take the same parameters,
        # except that the async webhook batch may run its store work inline.
        if name == "handle_webhooks":
            a_params = [p for p in a_params if p[0] != "inline"]
        assert s_params == a_params, name
        assert s_return == a_return, name


def _order(reference: str) -> Order:
    return Order(reference=reference, amount=Money.of("149.90", "PEN"), description="Audífonos",
                 customer=Customer(first_name="Rosa", last_name="Quispe",
                                   email="rosa@example.pe", document=("DNI", "45678912")))


def _scenario(call: Callable[..., Any], gateway: FakeGateway, tag: str) -> list[Any]:
    """One checkout, written once: ``call(name, *args, **kwargs)`` runs an operation."""
    seen: list[Any] = []
    options = call("options", _order(f"{tag}-1"))
    seen.append(("options", sorted((o.method.value, o.available, o.provider) for o in options)))
    cash = call("pay", _order(f"{tag}-1"), method="cash", idempotency_key=f"{tag}-k1")
    seen.append(("pay", cash.status))
    again = call("pay", _order(f"{tag}-1"), method="cash", idempotency_key=f"{tag}-k1")
    seen.append(("replay", again.id == cash.id))
    headers, body = gateway.settle(cash.provider_reference)
    reply = call("handle_webhook", "fake", headers, body)
    seen.append(("webhook", reply.status_code, call("get", cash.id).status))
    batch = call("handle_webhooks", [("fake", headers, body)])
    seen.append(("batch", [r.status_code for r in batch]))
    other = call("pay", _order(f"{tag}-2"), method="cash", idempotency_key=f"{tag}-k2")
    seen.append(("sync", call("sync", other.id).status))
    seen.append(("cancel", call("cancel", other.id).status))
    card = call("pay", _order(f"{tag}-3"), method="card", idempotency_key=f"{tag}-k3")
    seen.append(("card", card.status))
    refund = call("refund", card.id, Money.of("10.00", "PEN"))
    seen.append(("refund", refund.status.value, call("get", card.id).status))
    seen.append(("expire", call("expire_due")))
    seen.append(("resolve", call("resolve_due")))
    seen.append(("dispatch", call("dispatch_outbox") >= 0))
    return seen


def _build(cls: type, store_url: str, gateway: FakeGateway, clock: ManualClock) -> Any:
    config = {"store": {"url": store_url}, "providers": {"fake": {"max_retries": 0}}}
    return cls(config, plugins=[FakePlugin()], load_entrypoints=False, clock=clock,
               transport=gateway.transport(), store=Store(store_url, upgrade=True))


def test_the_same_scenario_gives_the_same_outcomes(store_url: str) -> None:
    clock = ManualClock()
    gateway = FakeGateway(clock=clock)
    with _build(Pasarela, store_url, gateway, clock) as pasarela:
        pasarela.service.sleep_scale = 0
        sync_seen = _scenario(lambda name, *a, **kw: getattr(pasarela, name)(*a, **kw),
                              gateway, "sync")

    async_gateway = gateway  # one gateway: its event ids must not repeat across the runs

    async def main() -> list[Any]:
        async with _build(AsyncPasarela, store_url, async_gateway, clock) as apasarela:
            apasarela.service.sleep_scale = 0

            async def run(name: str, *a: Any, **kw: Any) -> Any:
                result = getattr(apasarela, name)(*a, **kw)
                assert inspect.isawaitable(result), f"AsyncPasarela.{name} is not awaitable"
                return await result

            def call(name: str, *a: Any, **kw: Any) -> Any:  # the scenario runs in a thread
                return anyio.from_thread.run(partial(run, name, *a, **kw))

            return await anyio.to_thread.run_sync(_scenario, call, async_gateway, "async")

    async_seen = anyio.run(main)
    assert sync_seen == async_seen
    assert ("pay", Status.PENDING) in sync_seen
    assert ("webhook", 200, Status.SUCCEEDED) in sync_seen
