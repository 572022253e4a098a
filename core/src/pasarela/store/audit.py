"""The evidence chain in the store: reading and verifying each payment's chain, the
store's chain heads, and retention (``docs/audit.md``).

Writes chain their rows as they insert them (:mod:`pasarela.store.chain`, called
from the store's write paths under the payment's row lock); this part reads them
back: :meth:`AuditTrail.chain_records` and :meth:`AuditTrail.verify_chain`
recompute every hash and link, :meth:`AuditTrail.seal_chain` folds the records
written since the last head into a new head (so no write waits for a store-wide
counter), :meth:`AuditTrail.verify_heads` recomputes the heads, and
:meth:`AuditTrail.prune_evidence` removes old exchanges and deliveries, leaving
each removed range's hashes in ``audit_pruned`` so that the chain still verifies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Final, NamedTuple

import attrs
import sqlalchemy as sa

from pasarela.errors import ConcurrencyConflictError, NotFoundError
from pasarela.store._base import StoreBase
from pasarela.store._rows import from_db, utc_now
from pasarela.store._writes import lock_chain
from pasarela.store.chain import (
    GENESIS,
    ChainRecord,
    ChainReport,
    Kind,
    body_digest,
    content_of,
    fold,
    head_hash,
    record_hash,
)
from pasarela.store.personal import ERASED
from pasarela.store.schema import (
    audit_heads,
    audit_pruned,
    exchanges,
    payments,
    transitions,
    webhook_deliveries,
)


__all__ = ["AuditTrail", "ChainHead", "HeadCheck", "Pruned"]

#: Each chained table, its kind and its time column.
_TABLES: Final[tuple[tuple[Kind, sa.Table, str], ...]] = (
    ("exchange", exchanges, "started_at"),
    ("transition", transitions, "at"),
    ("delivery", webhook_deliveries, "received_at"),
)
_CHUNK: Final = 200
_UPTO: Final[dict[str, str]] = {"exchange": "upto_exchange", "transition": "upto_transition",
                "delivery": "upto_delivery"}


@attrs.frozen(kw_only=True)
class ChainHead:
    """One head of the store's chain: it folds every record written since the
    previous head (``upto``: the last record id folded, per kind)."""

    seq: int
    at: datetime
    prev_hash: str
    hash: str
    #: The digest of the folded ``(kind, id, hash)`` items, and their number.
    records: str
    count: int
    upto: Mapping[str, int]
    #: Ed25519 signature of ``hash`` (base64) and the public key (base64, raw), if signed.
    signature: str | None = None
    public_key: str | None = None

    def recomputed(self) -> str:
        """The hash its fields give (equal to :attr:`hash` unless it was altered)."""
        return head_hash(self.prev_hash, seq=self.seq, at=self.at, records=self.records,
                         count=self.count, upto={k: int(v) for k, v in self.upto.items()})


class HeadCheck(NamedTuple):
    """What :meth:`AuditTrail.verify_heads` found."""

    ok: bool
    checked: int
    #: The first head that does not match (None: all do).
    first_bad: int | None
    reason: str
    #: Heads whose folded records were partly removed by retention (checked by link).
    pruned: int


class Pruned(NamedTuple):
    """One pass of :meth:`AuditTrail.prune_evidence`."""

    payments: int
    exchanges: int
    deliveries: int


class _Item:
    """One chained row or pruned range of a payment, as read."""

    __slots__ = ("at", "hash", "kind", "prev", "pruned", "record_id", "row", "seq")

    def __init__(self, kind: Kind, row: Mapping[str, Any] | None, *, seq: int, prev: str,
                 hash_: str, at: datetime, record_id: int,
                 pruned: Mapping[str, Any] | None = None) -> None:
        self.kind, self.row, self.seq, self.prev = kind, row, seq, prev
        self.hash, self.at, self.record_id, self.pruned = hash_, at, record_id, pruned


def _items(rows: Iterable[tuple[Kind, Mapping[str, Any]]],
           ranges: Iterable[Mapping[str, Any]]) -> list[_Item]:
    items = [_Item(kind, row, seq=row["chain_seq"], prev=row["chain_prev"],
                   hash_=row["chain_hash"], at=from_db(row[_time(kind)]),
                   record_id=row["id"]) for kind, row in rows]
    items += [_Item(r["first_kind"], None, seq=r["first_seq"], prev=r["first_prev"],
                    hash_=r["last_hash"], at=from_db(r["first_at"]),
                    record_id=r["first_seq"], pruned=r) for r in ranges]
    items.sort(key=lambda i: (i.seq, i.pruned is None))
    return items


def _time(kind: str) -> str:
    return {"exchange": "started_at", "transition": "at", "delivery": "received_at"}[kind]


def _check(payment_id: str, items: list[_Item], tip: tuple[int, str] | None
           ) -> list[ChainRecord]:
    """Recompute a payment's chain: each record's hash and its link to the previous
    one, then the payment's tip."""
    erased_at = [i.seq for i in items if i.kind == "transition" and i.row is not None
                 and i.row["reason"] == ERASED]
    out: list[ChainRecord] = []
    prev, expected = GENESIS, 1
    for item in items:
        problem = ""
        count = 1
        if item.pruned is not None:
            r = item.pruned
            count = r["count"]
            if r["last_seq"] - r["first_seq"] + 1 != count:
                problem = (f"content: a pruned range of positions {r['first_seq']}-"
                           f"{r['last_seq']} says it held {count} records")
            end = r["last_seq"]
        else:
            row = item.row
            assert row is not None
            end = item.seq
            again = record_hash(item.prev, item.kind, content_of(item.kind, row))
            if again != item.hash:
                problem = (f"content: the stored hash is {item.hash[:16]}..., the row's "
                           f"content gives {again[:16]}... (changed after it was written)")
            elif (item.kind == "exchange" and body_digest(row) != row["body_digest"]
                  and not any(seq > item.seq for seq in erased_at)):
                problem = ("content: the exchange's URL, headers or bodies differ from "
                           "the digest its hash covers (changed after it was written, "
                           "and no erasure follows it)")
        if not problem and item.seq != expected:
            problem = (f"link: it is at position {item.seq} of the chain, the previous "
                       f"record ends at {expected - 1} (a record is missing or was added)")
        elif not problem and item.prev != prev:
            problem = (f"link: it names {item.prev[:16] or '(none)'}... as the previous "
                       f"hash, the previous record's is {prev[:16] or '(none)'}...")
        out.append(ChainRecord(kind=item.kind, record_id=item.record_id, at=item.at,
                               prev_hash=item.prev, hash=item.hash, ok=not problem,
                               payment_id=payment_id, seq=item.seq, problem=problem,
                               pruned=item.pruned is not None, count=count))
        prev, expected = item.hash, end + 1
    if tip is not None and (tip[0], tip[1]) != (expected - 1, prev):
        missing = (f"link: the payment's chain goes on to position {tip[0]} "
                   f"({tip[1][:16] or '(none)'}...), its last record is at {expected - 1}"
                   " (records after it are missing or its tip was changed)")
        if out:
            out[-1] = attrs.evolve(out[-1], ok=False, problem=out[-1].problem or missing)
        else:
            out.append(ChainRecord(kind="transition", record_id=0, at=utc_now(),
                                   prev_hash=GENESIS, hash=tip[1], ok=False,
                                   payment_id=payment_id, seq=tip[0], problem=missing))
    return out


class AuditTrail(StoreBase):
    """The evidence chain part of :class:`~pasarela.store.Store`."""

    # --- one payment, every payment ---------------------------------------------------

    def chain_records(self, payment_id: str) -> list[ChainRecord]:
        """The payment's chained records (pruned ranges as one each) in chain order,
        each recomputed (``ok``); ``NotFoundError`` when there is no such payment."""
        with self._begin() as conn:
            tip = conn.execute(sa.select(payments.c.chain_seq, payments.c.chain_hash)
                               .where(payments.c.id == payment_id)).first()
            if tip is None:
                raise NotFoundError(f"no payment {payment_id!r}")
            chains = self._chains(conn, [payment_id])
        return _check(payment_id, chains[payment_id], (int(tip[0]), tip[1]))

    def verify_chain(self, payment_id: str | None = None, *,
                     merchant: str | None = None) -> ChainReport:
        """Recompute the chain of *payment_id*, or of every payment (of *merchant*
        when given; with none, also the records of no payment) in id order; the
        first record that does not match, with what differs."""
        if payment_id is not None:
            if merchant is not None:
                with self._begin() as conn:
                    owner = conn.execute(sa.select(payments.c.merchant)
                                         .where(payments.c.id == payment_id)).scalar()
                if owner != merchant:
                    raise NotFoundError(f"no payment {payment_id!r}")
            found = self.chain_records(payment_id)
            bad = next((r for r in found if not r.ok), None)
            return ChainReport(ok=bad is None, checked=len(found), first_bad=bad,
                               reason=bad.problem if bad else "", payments=1)
        checked = count = 0
        for _pid, found in self._every_chain(merchant):
            count += 1
            checked += len(found)
            bad = next((r for r in found if not r.ok), None)
            if bad is not None:
                return ChainReport(ok=False, checked=checked, first_bad=bad,
                                   reason=bad.problem, payments=count)
        if merchant is None:
            for record in self._alone():
                checked += 1
                if not record.ok:
                    return ChainReport(ok=False, checked=checked, first_bad=record,
                                       reason=record.problem, payments=count)
        return ChainReport(ok=True, checked=checked, payments=count)

    def unchained(self) -> int:
        """Records written with the chain off (``[audit] chain = false``): not covered."""
        with self._begin() as conn:
            return sum(int(conn.execute(sa.select(sa.func.count()).select_from(table)
                                        .where(table.c.chain_hash.is_(None))).scalar_one())
                       for _, table, _ in _TABLES)

    def _every_chain(self, merchant: str | None) -> Iterator[tuple[str, list[ChainRecord]]]:
        after = ""
        while True:
            query = (sa.select(payments.c.id, payments.c.chain_seq, payments.c.chain_hash)
                     .where(payments.c.id > after).order_by(payments.c.id).limit(_CHUNK))
            if merchant is not None:
                query = query.where(payments.c.merchant == merchant)
            with self._begin() as conn:
                tips = {pid: (int(seq), value) for pid, seq, value in conn.execute(query)}
                if not tips:
                    return
                chains = self._chains(conn, list(tips))
            for pid, tip in tips.items():
                yield pid, _check(pid, chains[pid], tip)
            after = max(tips)

    def _chains(self, conn: sa.Connection, ids: Sequence[str]) -> dict[str, list[_Item]]:
        rows: dict[str, list[tuple[Kind, Mapping[str, Any]]]] = {pid: [] for pid in ids}
        for kind, table, _ in _TABLES:
            query = sa.select(table).where(table.c.payment_id.in_(ids),
                                           table.c.chain_hash.is_not(None),
                                           table.c.chain_seq > 0)
            for row in conn.execute(query).mappings():
                rows[row["payment_id"]].append((kind, dict(row)))
        ranges: dict[str, list[Mapping[str, Any]]] = {pid: [] for pid in ids}
        for row in conn.execute(sa.select(audit_pruned)
                                .where(audit_pruned.c.payment_id.in_(ids))).mappings():
            ranges[row["payment_id"]].append(dict(row))
        return {pid: _items(rows[pid], ranges[pid]) for pid in ids}

    def _alone(self) -> Iterator[ChainRecord]:
        """The records of no payment (position 0), each checked on its own."""
        for kind, table, column in _TABLES:
            after = 0
            while True:
                with self._begin() as conn:
                    found = conn.execute(
                        sa.select(table).where(table.c.chain_seq == 0, table.c.id > after)
                        .order_by(table.c.id).limit(1000)).mappings().all()
                if not found:
                    break
                for found_row in found:
                    row = dict(found_row)
                    again = record_hash(row["chain_prev"], kind, content_of(kind, row))
                    problem = "" if again == row["chain_hash"] and row["chain_prev"] == "" \
                        else (f"content: the stored hash is {row['chain_hash'][:16]}..., "
                              f"the row's content gives {again[:16]}...")
                    yield ChainRecord(kind=kind, record_id=row["id"],
                                      at=from_db(row[column]), prev_hash=row["chain_prev"],
                                      hash=row["chain_hash"], ok=not problem,
                                      payment_id=row["payment_id"], seq=0, problem=problem)
                after = found[-1]["id"]

    # --- the store's chain heads ------------------------------------------------------

    def seal_chain(self, *, sign: Callable[[str], tuple[str, str]] | None = None
                   ) -> ChainHead | None:
        """Fold the records written since the last head into a new head (signed by
        *sign*: the head's hash -> (signature, public key), both base64); the last
        head when nothing was written since; None when there is nothing at all.

        The ids folded are those every writer has finished with: on PostgreSQL a
        brief ``SHARE`` lock on each table in turn waits for the transactions
        inserting into it at the moment (its writes pause for one ``max(id)``,
        never for the fold); on SQLite the write transaction does."""
        tops: dict[str, int] = {}
        for kind, table, _ in _TABLES:
            # One table per transaction: the seal never holds one lock while it waits
            # for another, so it cannot deadlock with writers (who take them in any
            # order, erasure included).
            with self._begin(write=True) as conn:
                if not self._sqlite:
                    conn.execute(sa.text(f"LOCK TABLE {table.name} IN SHARE MODE"))
                tops[kind] = int(conn.execute(sa.select(sa.func.coalesce(
                    sa.func.max(table.c.id), 0))).scalar_one())
        with self._begin(write=True) as conn:
            last = conn.execute(sa.select(audit_heads).order_by(audit_heads.c.seq.desc())
                                .limit(1)).mappings().first()
            since = {k: (int(last[c]) if last else 0) for k, c in _UPTO.items()}
            upto = {k: max(tops[k], since[k]) for k, _ in tops.items()}
            records, count = fold(_folded(conn, since, upto))
            if count == 0:
                return None if last is None else _head(dict(last))
            seq = (int(last["seq"]) if last else 0) + 1
            prev = last["hash"] if last else GENESIS
            at = utc_now()
            value = head_hash(prev, seq=seq, at=at, records=records, count=count, upto=upto)
            signature, public_key = sign(value) if sign is not None else (None, None)
            try:
                conn.execute(sa.insert(audit_heads).values(
                    seq=seq, at=at, prev_hash=prev, hash=value, records=records,
                    count=count, signature=signature, public_key=public_key,
                    **{_UPTO[k]: upto[k] for k in _UPTO}))
            except sa.exc.IntegrityError as exc:
                raise ConcurrencyConflictError(
                    "another seal wrote the next chain head first; seal again") from exc
        return ChainHead(seq=seq, at=at, prev_hash=prev, hash=value, records=records,
                         count=count, upto=upto, signature=signature, public_key=public_key)

    def chain_heads(self) -> list[ChainHead]:
        """Every head, oldest first."""
        with self._begin() as conn:
            rows = conn.execute(sa.select(audit_heads).order_by(audit_heads.c.seq)).mappings()
            return [_head(dict(row)) for row in rows]

    def chain_head(self) -> ChainHead | None:
        """The newest head, or None before the first seal."""
        with self._begin() as conn:
            row = conn.execute(sa.select(audit_heads).order_by(audit_heads.c.seq.desc())
                               .limit(1)).mappings().first()
        return None if row is None else _head(dict(row))

    def verify_heads(self) -> HeadCheck:
        """Recompute every head: its link to the previous one, its hash, and the
        digest of the records it folded (a head whose records were partly removed
        by retention is checked by its link and hash only)."""
        prev, since = GENESIS, dict.fromkeys(_UPTO, 0)
        checked = pruned = 0
        with self._begin() as conn:
            ever_pruned = conn.execute(sa.select(audit_pruned.c.id).limit(1)).first()
        for head in self.chain_heads():
            checked += 1
            upto = {k: int(head.upto[k]) for k in _UPTO}
            again = head_hash(head.prev_hash, seq=head.seq, at=head.at, records=head.records,
                              count=head.count, upto=upto)
            problem = ""
            if head.seq != checked:
                problem = f"head {head.seq} follows head {checked - 1}"
            elif head.prev_hash != prev:
                problem = f"head {head.seq} does not name the previous head's hash"
            elif again != head.hash:
                problem = f"head {head.seq}'s stored hash is not the one its fields give"
            else:
                with self._begin() as conn:
                    records, count = fold(_folded(conn, since, upto))
                if records != head.records:
                    if count < head.count and ever_pruned is not None:
                        pruned += 1
                    else:
                        problem = (f"head {head.seq} folded {head.count} records; the "
                                   f"store now gives {count} with another digest (a "
                                   "record's hash was rewritten, added or removed)")
            if problem:
                return HeadCheck(False, checked, head.seq, problem, pruned)
            prev, since = head.hash, upto
        return HeadCheck(True, checked, None, "", pruned)

    # --- retention ----------------------------------------------------------------------

    def prune_evidence(self, before: datetime, *, limit: int = 200) -> Pruned:
        """Remove exchanges and deliveries older than *before* of up to *limit*
        payments (and as many records of no payment), in one transaction; each run
        of removed records in a payment's chain becomes one ``audit_pruned`` range
        (merged with a neighbouring range), so the chain still verifies."""
        ex = de = 0
        with self._begin(write=True) as conn:
            old_ex = (sa.select(exchanges.c.payment_id)
                      .where(exchanges.c.started_at < before, exchanges.c.chain_seq > 0))
            old_de = (sa.select(webhook_deliveries.c.payment_id)
                      .where(webhook_deliveries.c.received_at < before,
                             webhook_deliveries.c.chain_seq > 0))
            ids = sorted(set(conn.execute(old_ex.distinct().limit(limit)).scalars())
                         | set(conn.execute(old_de.distinct().limit(limit)).scalars()))[:limit]
            now = utc_now()
            for pid in ids:
                if lock_chain(conn, pid) is None:
                    continue
                items = self._chains(conn, [pid])[pid]
                for run in _runs(items, before):
                    first, last = run[0], run[-1]
                    conn.execute(sa.insert(audit_pruned).values(
                        payment_id=pid, first_seq=first.seq,
                        last_seq=(last.pruned["last_seq"] if last.pruned is not None
                                  else last.seq),
                        count=sum(i.pruned["count"] if i.pruned is not None else 1
                                  for i in run),
                        first_prev=first.prev, last_hash=last.hash, first_kind=first.kind,
                        first_at=first.at,
                        last_at=(last.pruned["last_at"] if last.pruned is not None
                                 else last.at),
                        pruned_at=now))
                    for item in run:
                        if item.pruned is not None:
                            conn.execute(sa.delete(audit_pruned)
                                         .where(audit_pruned.c.id == item.pruned["id"]))
                        elif item.kind == "exchange":
                            conn.execute(sa.delete(exchanges)
                                         .where(exchanges.c.id == item.record_id))
                            ex += 1
                        else:
                            conn.execute(sa.delete(webhook_deliveries)
                                         .where(webhook_deliveries.c.id == item.record_id))
                            de += 1
            for table, column in ((exchanges, "started_at"), (webhook_deliveries,
                                                              "received_at")):
                alone = list(conn.execute(
                    sa.select(table.c.id).where(table.c[column] < before,
                                                sa.or_(table.c.chain_seq == 0,
                                                       table.c.chain_seq.is_(None)))
                    .limit(limit * 10)).scalars())
                if alone:
                    conn.execute(sa.delete(table).where(table.c.id.in_(alone)))
                    # Recorded under payment "" (no chain): heads that folded them are
                    # then known to be partly pruned, not tampered with.
                    conn.execute(sa.insert(audit_pruned).values(
                        payment_id="", first_seq=0, last_seq=0, count=len(alone),
                        first_prev="", last_hash="",
                        first_kind="exchange" if table is exchanges else "delivery",
                        first_at=now, last_at=now, pruned_at=now))
                    if table is exchanges:
                        ex += len(alone)
                    else:
                        de += len(alone)
        return Pruned(len(ids), ex, de)


def _runs(items: list[_Item], before: datetime) -> list[list[_Item]]:
    """The runs of consecutive prunable items (old exchanges and deliveries, and
    ranges pruned before) holding at least one record not yet pruned."""
    runs: list[list[_Item]] = []
    current: list[_Item] = []
    for item in items:
        if item.pruned is not None or (item.kind != "transition" and item.at < before):
            current.append(item)
            continue
        if current:
            runs.append(current)
        current = []
    if current:
        runs.append(current)
    return [run for run in runs if any(i.pruned is None for i in run)]


def _folded(conn: sa.Connection, since: Mapping[str, int], upto: Mapping[str, int]
            ) -> Iterator[tuple[str, int, str]]:
    """The ``(kind, id, hash)`` of the chained records with ids in (since, upto], per
    kind in id order."""
    for kind, table, _ in _TABLES:
        query = (sa.select(table.c.id, table.c.chain_hash)
                 .where(table.c.id > since[kind], table.c.id <= upto[kind],
                        table.c.chain_hash.is_not(None))
                 .order_by(table.c.id))
        for record_id, value in conn.execute(query):
            yield kind, int(record_id), value


def _head(row: Mapping[str, Any]) -> ChainHead:
    return ChainHead(seq=row["seq"], at=from_db(row["at"]), prev_hash=row["prev_hash"],
                     hash=row["hash"], records=row["records"], count=row["count"],
                     upto={k: int(row[c]) for k, c in _UPTO.items()},
                     signature=row["signature"], public_key=row["public_key"])
