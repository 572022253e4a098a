"""Personal data sealed at rest: the customer, description and metadata of a stored
order, encrypted with the keys of ``[privacy] keys`` (``cryptography``'s Fernet:
AES-128-CBC with an HMAC-SHA256, a timestamped token).

The first key seals; every key opens (:class:`~cryptography.fernet.MultiFernet`), so
a new key is put first and the old ones kept until ``pasarela customers rotate-key``
has sealed every row again under it. A token that no configured key opens is a
:class:`~pasarela.errors.ConfigurationError` naming ``privacy.keys``: never a
payment read without its customer.

:func:`split_order` and :func:`join_order` are how an order's dictionary is cut into
the part kept in clear (amounts, reference, country, expiry: what the books and the
queries need) and the personal part, and put back together.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from pasarela.config.sections import key_problem
from pasarela.errors import ConfigurationError


if TYPE_CHECKING:
    from cryptography.fernet import Fernet, MultiFernet

# ``cryptography`` is imported when a key is used, not with the store: its native
# bindings cost a tenth of a second at import, which a deployment without keys never pays.


__all__ = [
    "KEYS_PATH",
    "PERSONAL_FIELDS",
    "Sealer",
    "check_key",
    "customer_digests",
    "document_text",
    "join_order",
    "new_key",
    "opened_order",
    "phone_digits",
    "split_order",
]

#: Where the keys are configured (errors name it).
KEYS_PATH: Final = "privacy.keys"
#: The order's fields that may hold personal data: sealed when a key is configured,
#: erased by ``pasarela customers forget``.
PERSONAL_FIELDS: Final = ("customer", "description", "metadata")
#: What the search keys are derived with (HMAC-SHA256 of this under each key).
_SEARCH_CONTEXT: Final = b"pasarela console search v1"
#: What each personal field is in the clear part of a sealed (or erased) order.
_EMPTY: Final[Mapping[str, Any]] = {"customer": None, "description": "", "metadata": {}}


def new_key() -> str:
    """A new random key, as ``[privacy] keys`` takes it (url-safe base64 of 32 bytes)."""
    from cryptography.fernet import Fernet  # noqa: PLC0415 (see the module's imports)

    return Fernet.generate_key().decode("ascii")


def check_key(key: object) -> str | None:
    """Why *key* is not a usable key (a message without the key), or None (the
    configuration's rule, :func:`pasarela.config.sections.key_problem`)."""
    return key_problem(key)


def split_order(order: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """*order* (``Order.to_dict()``) as its clear part (personal fields emptied)
    and its personal part."""
    clear = {k: v for k, v in order.items() if k not in PERSONAL_FIELDS}
    clear.update(_EMPTY)
    return clear, {k: order.get(k, _EMPTY[k]) for k in PERSONAL_FIELDS}


def join_order(clear: Mapping[str, Any], personal: Mapping[str, Any]) -> dict[str, Any]:
    """The order's dictionary from its two parts (what :func:`split_order` cut)."""
    return {**clear, **{k: personal[k] for k in PERSONAL_FIELDS if k in personal}}


class Sealer:
    """Seals and opens the personal part of orders with the configured keys."""

    __slots__ = ("_current", "_invalid", "_keys", "_multi", "_search")

    def __init__(self, keys: Sequence[str]) -> None:
        """*keys*: newest first (it seals); all of them open. At least one."""
        if not keys:
            raise ConfigurationError("give at least one key", path=KEYS_PATH)
        from cryptography.fernet import Fernet, InvalidToken, MultiFernet  # noqa: PLC0415

        self._invalid: tuple[type[Exception], ...] = (InvalidToken, UnicodeEncodeError)
        fernets: list[Fernet] = []
        for i, key in enumerate(keys):
            problem = check_key(key)
            if problem is not None:
                raise ConfigurationError(problem, path=f"{KEYS_PATH}[{i}]")
            fernets.append(Fernet(key.encode("ascii")))
        self._keys = len(fernets)
        # One search key per key, derived from it (never the key itself): the keyed
        # hashes that make a customer's phone and document searchable (digests()).
        self._search = tuple(hmac.new(base64.urlsafe_b64decode(key), _SEARCH_CONTEXT,
                                      hashlib.sha256).digest() for key in keys)
        self._current: Fernet = fernets[0]
        self._multi: MultiFernet = MultiFernet(fernets)

    @classmethod
    def from_keys(cls, keys: Sequence[str]) -> Sealer | None:
        """A sealer over ``[privacy] keys``, or None when none is configured."""
        return cls(keys) if keys else None

    def __repr__(self) -> str:
        return f"Sealer({self._keys} key{'s' if self._keys != 1 else ''})"

    def seal(self, personal: Mapping[str, Any]) -> str:
        """*personal* (JSON values) as a token, sealed with the first key."""
        data = json.dumps(dict(personal), ensure_ascii=False, sort_keys=True,
                          separators=(",", ":")).encode()
        return self._multi.encrypt(data).decode("ascii")

    def open(self, token: str, *, payment_id: str | None = None) -> dict[str, Any]:
        """What *token* seals; ``ConfigurationError`` (``privacy.keys``) when none of
        the keys opens it."""
        try:
            data = self._multi.decrypt(token.encode("ascii"))
        except self._invalid:
            raise _unopenable(payment_id, self._keys) from None
        opened = json.loads(data)
        if not isinstance(opened, dict):  # pragma: no cover - only seal() writes tokens
            raise _unopenable(payment_id, self._keys)
        return opened

    def is_current(self, token: str) -> bool:
        """Whether *token* was sealed with the first (newest) key."""
        try:
            self._current.decrypt(token.encode("ascii"))
        except self._invalid:
            return False
        return True

    def digests(self, kind: str, value: str) -> tuple[str, ...]:
        """The keyed hashes (hex HMAC-SHA256) of *value*, normalised, as a *kind*
        (``phone`` or ``document``), under each key's search key, newest first:
        the first is what a row written now stores; a search asks for any of them,
        so rows not yet hashed again after a key rotation are found too."""
        text = phone_digits(value) if kind == "phone" else document_text(value)
        if not text:
            return ()
        data = f"{kind}:{text}".encode()
        return tuple(hmac.new(key, data, hashlib.sha256).hexdigest() for key in self._search)

    def rotate(self, token: str, *, payment_id: str | None = None) -> str:
        """*token* sealed again with the first key (``ConfigurationError`` as
        :meth:`open` when no key opens it)."""
        try:
            return self._multi.rotate(token.encode("ascii")).decode("ascii")
        except self._invalid:
            raise _unopenable(payment_id, self._keys) from None


def phone_digits(value: str) -> str:
    """A phone as its digits with the country code (a Peruvian number of 9 digits
    gets ``51``): ``+51 987 654 321``, ``987654321`` and ``51987654321`` are one."""
    digits = "".join(c for c in value if c.isdigit())
    return "51" + digits if len(digits) == 9 else digits


def document_text(value: str) -> str:
    """A document number without spaces, dots or dashes, in capitals (``45.678.912``
    and ``45678912`` are one; the kind is not part of it)."""
    return "".join(c for c in value if c.isalnum()).upper()


def customer_digests(order: Mapping[str, Any] | None, sealer: Sealer | None
                     ) -> dict[str, str | None]:
    """The ``phone_hash`` and ``document_hash`` columns of a payment whose order is
    *order* (its personal part in clear): the newest key's hashes, None without a key
    or a value."""
    customer = (order or {}).get("customer") or {}
    phone, document = customer.get("phone"), customer.get("document")
    number = str(document[1]) if isinstance(document, list | tuple) and len(document) == 2 \
        else None
    out: dict[str, str | None] = {"phone_hash": None, "document_hash": None}
    if sealer is None:
        return out
    if isinstance(phone, str) and phone:
        out["phone_hash"] = next(iter(sealer.digests("phone", phone)), None)
    if number:
        out["document_hash"] = next(iter(sealer.digests("document", number)), None)
    return out


def _unopenable(payment_id: str | None, keys: int) -> ConfigurationError:
    whose = f"payment {payment_id}'s" if payment_id else "the"
    return ConfigurationError(
        f"none of the {keys} configured key{'s' if keys != 1 else ''} opens {whose} "
        "personal data: it was sealed with a key that is not configured (add that key, "
        "after the newest)", path=KEYS_PATH, payment_id=payment_id)


def opened_order(order: Mapping[str, Any] | None, personal: str | None,
                 sealer: Sealer | None, *, payment_id: str | None = None
                 ) -> Mapping[str, Any] | None:
    """The stored order's dictionary with its personal part opened (as stored when
    nothing is sealed); ``ConfigurationError`` when it is sealed and no key is set."""
    if personal is None or order is None:
        return order
    if sealer is None:
        raise ConfigurationError(
            f"payment {payment_id}'s personal data is sealed and no key is configured "
            "(set [privacy] keys)", path=KEYS_PATH, payment_id=payment_id)
    return join_order(order, sealer.open(personal, payment_id=payment_id))

