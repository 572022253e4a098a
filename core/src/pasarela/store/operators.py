"""The operator console's accounts, its session key and its audit log (migration 0009).

- ``operators``: one row per (merchant, name): the role (1 viewer, 2 operator,
  3 admin), the password's argon2 hash (never the password: hashing is the caller's,
  :mod:`pasarela.web.console_auth`) and the session *generation*: a session names
  the generation it was signed under, and "sign out everywhere" (or a new password)
  moves it on, so every older session stops working in every process at once.
- ``console_keys``: per merchant, the random key the console's session cookies and
  CSRF tokens are signed with, made on first use and shared by every process.
- ``operator_audit``: one row per console action, refusals included: when, which
  operator (and role), the action, its target, the client's address, the outcome
  and a JSON detail the caller has already masked.

The merchant ``""`` is the implicit one (a deployment without merchants).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa

from pasarela.errors import NotFoundError, ValidationError
from pasarela.store._base import StoreBase
from pasarela.store._rows import from_db, to_db, utc_now
from pasarela.store.schema import metadata


__all__ = ["AUDIT_LIMIT", "Operators", "console_keys", "operator_audit", "operators"]

_ts = sa.DateTime(timezone=True)
#: The most audit rows one read returns.
AUDIT_LIMIT: Final = 1000

operators = sa.Table(
    "operators",
    metadata,
    sa.Column("merchant", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("role", sa.SmallInteger, nullable=False),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("generation", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", _ts, nullable=False),
    sa.Column("updated_at", _ts, nullable=False),
)

console_keys = sa.Table(
    "console_keys",
    metadata,
    sa.Column("merchant", sa.String(32), primary_key=True),
    sa.Column("secret", sa.String(128), nullable=False),
    sa.Column("created_at", _ts, nullable=False),
)

operator_audit = sa.Table(
    "operator_audit",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("merchant", sa.String(32), nullable=False),
    sa.Column("at", _ts, nullable=False),
    sa.Column("operator", sa.String(64), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target", sa.String(255), nullable=False),
    sa.Column("address", sa.String(64), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("detail", sa.Text, nullable=False, server_default="{}"),
    sa.Index("ix_operator_audit_merchant_at", "merchant", "at"),
    sa.Index("ix_operator_audit_merchant_operator_at", "merchant", "operator", "at"),
)

_PUBLIC: Final = (operators.c.name, operators.c.role, operators.c.generation,
                  operators.c.created_at, operators.c.updated_at)


def _account(row: Any) -> dict[str, Any]:
    return {"name": row.name, "role": int(row.role), "generation": int(row.generation),
            "created_at": from_db(row.created_at), "updated_at": from_db(row.updated_at)}


def _where(merchant: str, name: str) -> sa.ColumnElement[bool]:
    return sa.and_(operators.c.merchant == merchant, operators.c.name == name)


class Operators(StoreBase):
    """The console's part of :class:`~pasarela.store.Store` (see the module docs)."""

    def add_operator(self, merchant: str, name: str, role: int, password_hash: str) -> None:
        """A new operator of *merchant*. Raises ``ValidationError`` (field ``name``)
        when *name* is taken there."""
        now = utc_now()
        with self._begin(write=True) as conn:
            if conn.execute(sa.select(operators.c.name)
                            .where(_where(merchant, name))).first() is not None:
                raise ValidationError(f"operator {name!r} exists already", field="name")
            conn.execute(operators.insert().values(
                merchant=merchant, name=name, role=role, password_hash=password_hash,
                generation=0, created_at=now, updated_at=now))

    def operator_account(self, merchant: str, name: str) -> dict[str, Any] | None:
        """*merchant*'s operator *name* (``name``, ``role``, ``generation``,
        ``created_at``, ``updated_at``), or None."""
        with self._begin() as conn:
            row = conn.execute(sa.select(*_PUBLIC).where(_where(merchant, name))).first()
        return None if row is None else _account(row)

    def operator_password_hash(self, merchant: str, name: str) -> str | None:
        """The stored hash of *name*'s password (to verify a sign-in), or None."""
        with self._begin() as conn:
            value = conn.execute(sa.select(operators.c.password_hash)
                                 .where(_where(merchant, name))).scalar()
        return None if value is None else str(value)

    def operator_accounts(self, merchant: str) -> list[dict[str, Any]]:
        """Every operator of *merchant*, by name (no hashes)."""
        with self._begin() as conn:
            rows = conn.execute(sa.select(*_PUBLIC).where(operators.c.merchant == merchant)
                                .order_by(operators.c.name)).all()
        return [_account(row) for row in rows]

    def has_operators(self, merchant: str) -> bool:
        """Whether *merchant* has any operator account (False on a store whose schema
        is older than migration 0009)."""
        with self._begin() as conn:
            if not sa.inspect(conn).has_table("operators"):
                return False
            return conn.execute(sa.select(operators.c.name)
                                .where(operators.c.merchant == merchant).limit(1)
                                ).first() is not None

    def _update_operator(self, merchant: str, name: str, values: Mapping[str, Any], *,
                         new_generation: bool = False) -> int:
        with self._begin(write=True) as conn:
            changes: dict[str, Any] = {**values, "updated_at": utc_now()}
            if new_generation:
                changes["generation"] = operators.c.generation + 1
            done = conn.execute(operators.update().where(_where(merchant, name))
                                .values(**changes).returning(operators.c.generation)).first()
            if done is None:
                raise NotFoundError(f"no operator {name!r}")
            return int(done.generation)

    def set_operator_role(self, merchant: str, name: str, role: int) -> None:
        """Give *name* the *role*; ``NotFoundError`` when there is no such operator."""
        self._update_operator(merchant, name, {"role": role})

    def set_operator_password(self, merchant: str, name: str, password_hash: str) -> None:
        """Keep *name*'s new password hash and end every session of theirs."""
        self._update_operator(merchant, name, {"password_hash": password_hash},
                              new_generation=True)

    def end_operator_sessions(self, merchant: str, name: str) -> int:
        """Sign *name* out everywhere (every session signed before now stops working);
        the new generation."""
        return self._update_operator(merchant, name, {}, new_generation=True)

    def remove_operator(self, merchant: str, name: str) -> None:
        """Delete *name*'s account (their audit rows stay); ``NotFoundError`` when absent."""
        with self._begin(write=True) as conn:
            if conn.execute(operators.delete().where(_where(merchant, name))).rowcount == 0:
                raise NotFoundError(f"no operator {name!r}")

    def console_key(self, merchant: str) -> str:
        """*merchant*'s console signing key, made (at random) on first use."""
        query = sa.select(console_keys.c.secret).where(console_keys.c.merchant == merchant)
        with self._begin() as conn:
            value = conn.execute(query).scalar()
        if value is not None:
            return str(value)
        with self._begin(write=True) as conn:
            value = conn.execute(query).scalar()  # another process may have made it
            if value is None:
                value = secrets.token_urlsafe(48)
                conn.execute(console_keys.insert().values(merchant=merchant, secret=value,
                                                          created_at=utc_now()))
        return str(value)

    def add_operator_audit(self, merchant: str, *, at: datetime, operator: str, role: str,
                           action: str, target: str, address: str, outcome: str,
                           detail: Mapping[str, Any]) -> None:
        """One row of *merchant*'s operator audit log (*detail* masked already)."""
        with self._begin(write=True) as conn:
            conn.execute(operator_audit.insert().values(
                merchant=merchant, at=to_db(at, "at"), operator=operator[:64], role=role[:16],
                action=action[:64], target=target[:255], address=address[:64],
                outcome=outcome[:16], detail=json.dumps(dict(detail), sort_keys=True,
                                                        default=str)))

    def operator_audit_log(self, merchant: str, *, operator: str | None = None,
                           limit: int = 100) -> list[dict[str, Any]]:
        """*merchant*'s newest audit rows first (of one *operator* if given), at most
        *limit* (capped at :data:`AUDIT_LIMIT`)."""
        query = sa.select(operator_audit).where(operator_audit.c.merchant == merchant)
        if operator is not None:
            query = query.where(operator_audit.c.operator == operator)
        query = query.order_by(operator_audit.c.at.desc(), operator_audit.c.id.desc()).limit(
            max(1, min(limit, AUDIT_LIMIT)))
        with self._begin() as conn:
            rows = conn.execute(query).all()
        return [{"at": from_db(r.at), "operator": r.operator, "role": r.role,
                 "action": r.action, "target": r.target, "address": r.address,
                 "outcome": r.outcome, "detail": json.loads(r.detail)} for r in rows]
