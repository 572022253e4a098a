"""The evidence chain's jobs and proofs (``docs/audit.md``): the worker's periodic
seal and retention (:class:`AuditJob`), Ed25519 signing of chain heads with the
``[audit] signing_key``, and the exported head (:func:`head_document`) that anyone
holding the public key can check (:func:`check_document`) and later compare with
the store (:func:`matches_store`).

``cryptography`` is imported when a key is first used, not with this module.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from pasarela.errors import ConcurrencyConflictError, ConfigurationError
from pasarela.logs import get_logger
from pasarela.store import ChainHead, Store


if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

    from pasarela.config.sections import AuditConfig


__all__ = [
    "ALGORITHM",
    "KEY_PATH",
    "AuditJob",
    "Signer",
    "check_document",
    "head_document",
    "matches_store",
    "new_signing_key",
    "prune",
    "public_key_text",
    "signer",
]

log = get_logger("pasarela.audit")

#: Where the signing key is configured (errors name it).
KEY_PATH: Final = "audit.signing_key"
ALGORITHM: Final = "ed25519"
#: Payments per retention pass, and passes per job run (the rest waits for the next run).
_PRUNE_BATCH: Final = 200
_PRUNE_PASSES: Final = 50

#: Signs a head's hash: -> (signature, public key), both url-safe base64.
Signer = Callable[[str], tuple[str, str]]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii")


def _private_key(text: str) -> Ed25519PrivateKey:
    """An Ed25519 private key from PEM (PKCS#8) or url-safe base64 of its 32 raw
    bytes; a ``ConfigurationError`` naming ``audit.signing_key`` otherwise (never
    quoting the key)."""
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (  # noqa: PLC0415
        Ed25519PrivateKey,
    )

    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(text.encode("ascii"), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise ValueError("not an Ed25519 key")
            return key
        raw = base64.urlsafe_b64decode(text.encode("ascii") + b"=" * (-len(text) % 4))
        return Ed25519PrivateKey.from_private_bytes(raw)
    except (ValueError, TypeError, UnicodeError) as exc:
        raise ConfigurationError(
            "not an Ed25519 private key (PEM, or url-safe base64 of 32 bytes; make one "
            "with `pasarela audit new-key`)", path=KEY_PATH) from exc


def _public_key(text: str) -> Ed25519PublicKey:
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (  # noqa: PLC0415
        Ed25519PublicKey,
    )

    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode("ascii"))
            if not isinstance(key, Ed25519PublicKey):
                raise ValueError("not an Ed25519 key")
            return key
        raw = base64.urlsafe_b64decode(text.encode("ascii") + b"=" * (-len(text) % 4))
        return Ed25519PublicKey.from_public_bytes(raw)
    except (ValueError, TypeError, UnicodeError) as exc:
        raise ConfigurationError("not an Ed25519 public key (PEM, or url-safe base64 of "
                                 "32 bytes)", path="public_key") from exc


def _raw_public(key: Ed25519PublicKey) -> str:
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

    return _b64(key.public_bytes(serialization.Encoding.Raw,
                                 serialization.PublicFormat.Raw))


def new_signing_key() -> tuple[str, str]:
    """A new Ed25519 key pair: (private, public), url-safe base64 of the raw bytes."""
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (  # noqa: PLC0415
        Ed25519PrivateKey,
    )

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                serialization.NoEncryption())
    return _b64(private), _raw_public(key.public_key())


def public_key_text(signing_key: str) -> str:
    """The public key (url-safe base64, raw) of *signing_key*."""
    return _raw_public(_private_key(signing_key).public_key())


def signer(signing_key: str | None) -> Signer | None:
    """The head signer of the configured key (None: heads go unsigned)."""
    if not signing_key:
        return None
    key = _private_key(signing_key)
    public = _raw_public(key.public_key())

    def sign(value: str) -> tuple[str, str]:
        return _b64(key.sign(value.encode("ascii"))), public

    return sign


def head_document(head: ChainHead) -> dict[str, Any]:
    """The exported head: everything needed to recompute its hash, and its signature."""
    return {
        "seq": head.seq,
        "at": head.at.isoformat(),
        "prev_hash": head.prev_hash,
        "records": head.records,
        "count": head.count,
        "upto": dict(head.upto),
        "hash": head.hash,
        "algorithm": ALGORITHM if head.signature else None,
        "signature": head.signature,
        "public_key": head.public_key,
    }


def check_document(document: Mapping[str, Any], public_key: str | None = None) -> str:
    """Why an exported head does not hold ("" when it does): its hash must be the
    one its fields give, and its signature valid for *public_key* (default: the key
    it names; give the one you trust)."""
    from cryptography.exceptions import InvalidSignature  # noqa: PLC0415

    try:
        again = ChainHead(
            seq=int(document["seq"]), at=datetime.fromisoformat(str(document["at"])),
            prev_hash=str(document["prev_hash"]), hash=str(document.get("hash")),
            records=str(document["records"]), count=int(document["count"]),
            upto={str(k): int(v) for k, v in dict(document["upto"]).items()}).recomputed()
    except (KeyError, TypeError, ValueError) as exc:
        return f"not a chain head: {exc}"
    if again != document.get("hash"):
        return "its hash is not the one its fields give (the head was altered)"
    key = public_key or document.get("public_key")
    if not document.get("signature"):
        return "it is not signed" if public_key else ""
    if not key:
        return "no public key to check its signature with"
    try:
        _public_key(str(key)).verify(
            base64.urlsafe_b64decode(str(document["signature"]).encode("ascii")),
            str(document["hash"]).encode("ascii"))
    except (InvalidSignature, ValueError, TypeError, ConfigurationError):
        return "its signature does not verify with the public key"
    return ""


def matches_store(store: Store, document: Mapping[str, Any]) -> str:
    """Why the store's head of the same number differs from an exported one ("":
    it is the same, so the records it folded were not rewritten since)."""
    for head in store.chain_heads():
        if head.seq == int(document["seq"]):
            return "" if head.hash == document.get("hash") else (
                f"the store's head {head.seq} is not the exported one (the chain was "
                "rewritten)")
    return f"the store has no head {document['seq']}"


def prune(store: Store, keep: timedelta, *, now: datetime) -> int:
    """Remove exchanges and deliveries older than *keep* (a bounded amount per call);
    how many were removed."""
    removed = 0
    for _ in range(_PRUNE_PASSES):
        done = store.prune_evidence(now - keep, limit=_PRUNE_BATCH)
        if done.exchanges + done.deliveries == 0:
            break
        removed += done.exchanges + done.deliveries
    if removed:
        log.info("audit_pruned", removed=removed, before=(now - keep).isoformat())
    return removed


class AuditJob:
    """The worker's audit job: at most every ``[audit] every`` (the first call runs),
    seal a chain head (signed with ``[audit] signing_key`` when set) and, with
    ``[audit] keep``, then remove what is older. Returns records pruned plus heads sealed."""

    def __init__(self, store: Store, config: AuditConfig, *,
                 clock: Callable[[], datetime],
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self.monotonic = monotonic
        self.sign = signer(config.signing_key)
        self._next = float("-inf")

    def __call__(self) -> int:
        if not self.config.chain or self.monotonic() < self._next:
            return 0
        self._next = self.monotonic() + self.config.every.total_seconds()
        done = 0
        # Seal first: what retention then removes was folded into a head already.
        before = self.store.chain_head()
        try:
            head = self.store.seal_chain(sign=self.sign)
        except ConcurrencyConflictError:  # another worker sealed this head first
            head = before
        if head is not None and (before is None or head.seq != before.seq):
            log.info("audit_sealed", seq=head.seq, records=head.count,
                     signed=head.signature is not None)
            done += 1
        if self.config.keep is not None:
            done += prune(self.store, self.config.keep, now=self.clock())
        return done
