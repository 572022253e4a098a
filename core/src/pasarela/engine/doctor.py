"""What makes payments stall in production, checked: the engine's part of
``pasarela doctor`` (the command adds the configuration and the public webhook URL).

Each check answers a :class:`Check`: a name, whether it passed, what was seen, and
the fix when it failed. Nothing here writes: a provider is asked one harmless,
authenticated request (:meth:`~pasarela.provider.Provider.probe`), the store is asked
whether it answers and is migrated, and the pending payments are read, and so are the
unknown payments and pending refunds the resolver could not settle
(:func:`operator_checks`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final

import attrs

from pasarela.engine.calls import run_flow
from pasarela.engine.context import Service
from pasarela.engine.jobs import RESOLVER_CHECKS
from pasarela.engine.steps import Steps
from pasarela.errors import AuthenticationError, PasarelaError
from pasarela.exchange import Exchange
from pasarela.provider import Operation
from pasarela.store import queries


__all__ = ["MAX_SKEW", "OLDEST_SHOWN", "Check", "operator_checks", "privacy_checks",
           "provider_checks", "stalled_checks", "store_checks"]

#: A provider's clock further than this from ours makes signed webhooks and expiries
#: misbehave (most providers' signature tolerance is five minutes).
MAX_SKEW: Final = 60.0
#: How many of the oldest payments (refunds) needing an operator a check names.
OLDEST_SHOWN: Final = 5


@attrs.frozen(kw_only=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    #: Not checked at all (the provider offers no probe, nothing to check).
    skipped: bool = False
    #: What the check counted, when it counts (``--json``): how many, and the oldest ids.
    count: int | None = None
    ids: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return attrs.asdict(self)


def store_checks(service: Service) -> list[Check]:
    store = service.store
    if not store.ping():
        return [Check(name="store", ok=False, detail=f"{store!r} does not answer",
                      fix="check [store] url, that the database runs and accepts you")]
    current, head = store.migrations()
    if current != head:
        return [Check(name="store", ok=False,
                      detail=f"{store!r} is at migration {current or 'none'}, not {head}",
                      fix="run `pasarela db upgrade`")]
    return [Check(name="store", ok=True, detail=f"{store!r} answers, migrated ({head})")]


def privacy_checks(service: Service) -> list[Check]:
    """Whether customers' personal data is sealed at rest (``[privacy] keys``). In clear
    is allowed while every provider is in its sandbox; with a production provider it
    fails: real customers' phones, documents and emails would sit in the store as text."""
    if service.store.sealer is not None:
        return [Check(name="personal data", ok=True,
                      detail="sealed at rest with the first of the [privacy] keys")]
    live = sorted(name for name, adapter in service.providers.items()
                  if adapter.settings.environment == "production")
    fix = ("set [privacy] keys = [\"env:PASARELA_DATA_KEY\"] (`pasarela customers new-key` "
           "makes one), then `pasarela customers rotate-key` seals the rows stored so far")
    if live:
        return [Check(name="personal data", ok=False, fix=fix,
                      detail=f"stored in clear while {', '.join(live)} take real payments")]
    return [Check(name="personal data", ok=True, fix=fix,
                  detail="stored in clear (no [privacy] keys; every provider is a sandbox)")]


def _skew(exchanges: list[Exchange]) -> float | None:
    """Seconds the provider's clock is ahead of ours, from its answer's Date header."""
    for exchange in reversed(exchanges):
        date = {k.lower(): v for k, v in exchange.response_headers.items()}.get("date")
        if not date:
            continue
        try:
            theirs = parsedate_to_datetime(date)
        except (TypeError, ValueError):
            continue
        if theirs.tzinfo is None:
            theirs = theirs.replace(tzinfo=UTC)
        ours = exchange.started_at.timestamp() + exchange.duration_ms / 2000
        return theirs.timestamp() - ours
    return None


def provider_checks(service: Service) -> Steps[list[Check]]:
    """Each configured provider's credentials and clock, one probe each."""
    out: list[Check] = []
    for name, adapter in sorted(service.providers.items()):
        where = f"{adapter.settings.environment}, {adapter.settings.base_url or 'default URL'}"
        if not adapter.supports(Operation.PROBE):
            out.append(Check(name=f"provider {name}", ok=True, skipped=True,
                             detail=f"{where}: the adapter offers no probe; not checked"))
            continue
        exchanges: list[Exchange] = []
        try:
            yield from run_flow(adapter, Operation.PROBE, adapter.probe,
                                record=exchanges.append, sleep_scale=service.sleep_scale)
        except AuthenticationError as exc:
            out.append(Check(name=f"provider {name}", ok=False,
                             detail=f"{where}: credentials refused ({exc})",
                             fix=f"check providers.{name}'s keys (and that they are for the "
                                 f"{adapter.settings.environment} environment)"))
            continue
        except PasarelaError as exc:
            out.append(Check(name=f"provider {name}", ok=False, detail=f"{where}: {exc}",
                             fix=f"check providers.{name}.base_url and that the provider "
                                 "answers from this machine"))
            continue
        skew = _skew(exchanges)
        if skew is not None and abs(skew) > MAX_SKEW:
            out.append(Check(name=f"provider {name}", ok=False,
                             detail=f"{where}: credentials accepted; its clock is {skew:+.0f} s "
                                    "from ours",
                             fix="synchronise this machine's clock (NTP)"))
            continue
        told = "" if skew is None else f"; clock skew {skew:+.1f} s"
        out.append(Check(name=f"provider {name}", ok=True,
                         detail=f"{where}: credentials accepted{told}"))
    return out


def stalled_checks(service: Service, *, now: datetime | None = None) -> Iterator[Check]:
    """Providers with payments pending past their notification delay and no webhook
    since: the "callback not configured" pitfall."""
    delays = {name: adapter.notification_delay.total_seconds()
              for name, adapter in service.providers.items()}
    silent = {s.provider: s for s in queries.silent_providers(
        service.store, delays, now=now or service.clock())}
    for name in sorted(service.providers):
        s = silent.get(name)
        if s is None:
            yield Check(name=f"webhooks {name}", ok=True,
                        detail="no payment pending past its notification delay without a "
                               "webhook since")
            continue
        last = "never" if s.last_delivery is None else s.last_delivery.isoformat()
        yield Check(name=f"webhooks {name}", ok=False,
                    detail=f"{s.pending} payment(s) pending since {s.oldest.isoformat()} "
                           f"(over {service.providers[name].notification_delay}); last "
                           f"webhook from {name}: {last}",
                    fix=f"configure the callback URL at {name} as "
                        f"<your public URL>/webhooks/{name}, and check it reaches "
                        "`pasarela serve` (pasarela doctor --public-url URL)")


def operator_checks(service: Service) -> list[Check]:
    """Unknown payments and pending refunds the resolver asked about through its whole
    schedule (:data:`pasarela.engine.jobs.RESOLVER_CHECKS` checks) without an answer,
    or whose provider cannot be asked: a person has to look them up at the provider.
    Each check counts them and names the oldest."""
    payments, refunds = queries.needing_operator(service.store, min_checks=RESOLVER_CHECKS,
                                                 limit=OLDEST_SHOWN)
    out = []
    for noun, found, fix in (
        ("payments", payments,
         "look each up in the provider's dashboard; the resolver keeps asking every few "
         "hours and applies the provider's answer when it comes (`Sync now` on /admin "
         "asks at once); a payment is never failed by time alone"),
        ("refunds", refunds,
         "look each up in the provider's dashboard (by the refund id, or the payment's "
         "reference); the resolver keeps asking where the provider can say, and the "
         "refund stays pending, holding its amount, until the provider does"),
    ):
        name = f"{noun} needing an operator"
        if not found.total:
            out.append(Check(name=name, ok=True, count=0,
                             detail=f"none: every unknown {noun[:-1]} is still within the "
                                    "resolver's schedule, or there are none"))
            continue
        oldest = ", ".join(f"{item.id} ({item.provider}, since {item.created_at:%Y-%m-%d %H:%M} "
                           f"UTC, {item.check_attempts} checks)" for item in found.oldest)
        state = "unknown" if noun == "payments" else "pending"
        out.append(Check(
            name=name, ok=False, count=found.total,
            ids=tuple(item.id for item in found.oldest), fix=fix,
            detail=f"{found.total} {noun} still {state} after the resolver's whole "
                   f"schedule (or their provider cannot be asked); oldest: {oldest}"))
    return out
