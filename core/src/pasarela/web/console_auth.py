"""Who may use the operator console, and what they did: roles, the guard every
console route asks, CSRF, and the operator audit log.

Every console page and action asks one :class:`ConsoleGuard` (one per console: the
implicit merchant's at ``/admin``, each merchant's at ``/m/NAME/admin``):

- :meth:`ConsoleGuard.operator`: who signed the request in, or None;
- :meth:`ConsoleGuard.require`: that operator when their :class:`Role` is at least
  the one given, else the response to send (401 with the sign-in form, or 403 naming
  the role needed);
- :meth:`ConsoleGuard.csrf_token` / :meth:`ConsoleGuard.check_csrf`: the CSRF token
  bound to the request's session, for every POST form (field ``csrf``);
- :meth:`ConsoleGuard.audit`: one row of the operator audit log (who, when, what,
  on what, from which address, the outcome), written for every action, refusals
  included.

A route factory of the console has the shape
``routes(pasarela, settings, guard) -> list[Route]``; its paths start with
:attr:`ConsoleGuard.mount` (``/admin`` or ``/m/NAME/admin``), and its pages link
under ``guard.context(request)["admin"]`` (the mount behind the app's root path).

Roles are ordered: a viewer reads, an operator also acts on payments (sync, cancel,
refund, extend, resolve a difference), an admin also manages the console and reads
its audit log. Operators are accounts of one merchant kept in the store
(:mod:`pasarela.store.operators`; ``pasarela operators add``), each with a password
hashed with argon2id (:func:`hash_password`); the password itself is never stored
or logged. The ``admin_token`` of the configuration is the break-glass credential:
whoever holds it is an :attr:`Role.ADMIN` named :data:`BREAK_GLASS`.

Sessions are cookies (HttpOnly, SameSite=Strict, Secure over https, path the
console's) signed with HMAC-SHA256: an operator's names the operator, their session
generation and its expiry, keyed by the merchant's console key (random, in the
store); the admin token's names its expiry, keyed by the token. An operator's
session is checked against the store on every request, so a new role, a removed
account, a new password or "sign out everywhere" (the generation moves on) take
effect at once in every process. Sign-in is throttled per address and per account
(:class:`~pasarela.web.throttle.LoginThrottle`).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qs

import anyio.to_thread
import attrs
import jinja2
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from pasarela.errors import NotFoundError, ValidationError
from pasarela.logs import get_logger, mask_fields
from pasarela.web.pay_page import SECURITY_HEADERS, STATIC_PATH, html
from pasarela.web.throttle import ACCOUNT, LoginThrottle


if TYPE_CHECKING:
    from argon2 import PasswordHasher

    from pasarela.store import Store


__all__ = ["BREAK_GLASS", "MIN_PASSWORD", "ConsoleGuard", "Operator", "Role", "check_name",
           "check_password", "hash_password", "parse_role", "read_form", "verify_password"]

log = get_logger("pasarela")

#: The operator name the admin token signs in as.
BREAK_GLASS: Final = "@admin-token"
COOKIE: Final = "pasarela_admin"
SESSION_TTL: Final = timedelta(hours=12)
#: The shortest password an operator may have.
MIN_PASSWORD: Final = 12
_NAME: Final = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
#: The largest form body a console POST reads.
MAX_FORM: Final = 8192


class Role(enum.IntEnum):
    """What an operator may do; each role may do everything the lower ones may."""

    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        """``viewer``, ``operator`` or ``admin``."""
        return self.name.lower()


def parse_role(value: str) -> Role:
    """A role by its label; ``ValidationError`` (field ``role``) naming the choices."""
    try:
        return Role[value.strip().upper()]
    except KeyError:
        raise ValidationError(f"unknown role {value!r}; expected viewer, operator or admin",
                              field="role") from None


def check_name(name: str) -> str:
    """*name* when it is a valid operator name (lower-case letters, digits, ``-`` and
    ``_``, up to 64, starting with a letter or digit); else ``ValidationError``."""
    if not _NAME.match(name):
        raise ValidationError("expected lower-case letters, digits, '-' and '_' (up to 64, "
                              "starting with a letter or digit)", field="name")
    return name


def check_password(password: str) -> str:
    """*password* when it is long enough; else ``ValidationError`` (never quoting it)."""
    if len(password) < MIN_PASSWORD:
        raise ValidationError(f"must be at least {MIN_PASSWORD} characters", field="password")
    return password


@cache
def _hasher() -> PasswordHasher:
    try:
        from argon2 import PasswordHasher  # noqa: PLC0415 - the console's extra
    except ImportError as exc:  # pragma: no cover - the server extra brings it
        raise ImportError("operator accounts need argon2-cffi: pip install "
                          "'pasarela[server]'") from exc
    return PasswordHasher()


def hash_password(password: str, hasher: PasswordHasher | None = None) -> str:
    """The argon2id hash of *password* (checked with :func:`check_password`), with
    argon2-cffi's default parameters unless *hasher* is given."""
    return (hasher or _hasher()).hash(check_password(password))


@cache
def _no_account() -> str:
    """Verified against when the account does not exist, so the answer takes as long."""
    return _hasher().hash(secrets.token_urlsafe(24))


def verify_password(stored: str | None, password: str) -> bool:
    """Whether *password* matches the *stored* hash (None: no such account; checked
    against a dummy hash all the same, then False)."""
    from argon2.exceptions import InvalidHashError, VerificationError  # noqa: PLC0415

    try:
        return _hasher().verify(stored or _no_account(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


@attrs.frozen
class Operator:
    """A signed-in operator of *merchant*'s console (``""``: the implicit merchant)."""

    name: str
    role: Role
    merchant: str


def _mac(key: str, *parts: str) -> str:
    return hmac.new(key.encode(), "\x00".join(parts).encode(), hashlib.sha256).hexdigest()


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8", "replace"), b.encode("utf-8", "replace"))


async def read_form(request: Request) -> dict[str, str]:
    """A console POST's urlencoded form (first value of each field); ``{}`` when the
    body is larger than :data:`MAX_FORM` or not a form."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            return {}
    if request.headers.get("content-type", "").split(";")[0].strip() != (
            "application/x-www-form-urlencoded"):
        return {}
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[0] for k, v in parsed.items()}


class ConsoleGuard:
    """The credential, sessions, CSRF and audit log of one console (see the module
    docs). Built on a console's first request, kept for the process.

    *store* keeps the operators and the audit log (without one, only the admin token
    signs in and the audit goes to the log alone); *token* is the break-glass admin
    token (None: none)."""

    def __init__(self, *, merchant: str, mount: str, token: str | None,
                 env: jinja2.Environment, now: Callable[[], datetime],
                 store: Store | None = None,
                 brand: Mapping[str, Any] | None = None,
                 throttle: LoginThrottle | None = None,
                 locale: Callable[[Request], Mapping[str, Any]] | None = None) -> None:
        self.merchant = merchant
        #: Where the console's routes live: ``/admin`` or ``/m/NAME/admin``.
        self.mount = mount
        self.cookie = COOKIE if not merchant else f"{COOKIE}_{merchant}"
        self._token = token
        self._store = store
        self._env = env
        self._now = now
        self._brand = dict(brand or {})
        self._throttle = throttle or LoginThrottle()
        self._locale = locale
        self._key: str | None = None

    # --- who -------------------------------------------------------------------------

    @staticmethod
    def address(request: Request) -> str:
        """The client's address (what the audit log and the throttle record)."""
        return request.client.host if request.client else "unknown"

    def _console_key(self) -> str:
        if self._key is None:
            if self._store is None:
                raise RuntimeError("operator sessions need a store")
            self._key = self._store.console_key(self.merchant)
        return self._key

    def _session(self, request: Request) -> tuple[Operator, str, str] | None:
        """The request's operator, the session id its CSRF token is bound to and the
        key that signs it (found once per request)."""
        cached = getattr(request.state, "pasarela_console", None)
        if cached is not None:
            return cached if cached != () else None
        found = self._find_session(request)
        request.state.pasarela_console = found if found is not None else ()
        return found

    def _find_session(self, request: Request) -> tuple[Operator, str, str] | None:
        now = self._now()
        token = self._token
        auth = request.headers.get("authorization", "")
        scheme, _, given = auth.partition(" ")
        if token and scheme.lower() == "bearer" and given:
            if (self._throttle.retry_after(self.address(request), now) is None
                    and _same(given.strip(), token)):
                return Operator(BREAK_GLASS, Role.ADMIN, self.merchant), "bearer", token
            self._throttle.failed(self.address(request), now)  # a guessed token counts too
        cookie = request.cookies.get(self.cookie, "")
        parts = cookie.split(".")
        if len(parts) == 2 and token:
            expiry, mac = parts
            if (expiry.isdigit() and _same(mac, _mac(token, "admin-session", expiry))
                    and int(expiry) > now.timestamp()):
                return Operator(BREAK_GLASS, Role.ADMIN, self.merchant), cookie, token
        elif len(parts) == 4 and self._store is not None:
            name, generation, expiry, mac = parts
            if not (generation.isdigit() and expiry.isdigit() and _NAME.match(name)
                    and int(expiry) > now.timestamp()):
                return None
            key = self._console_key()
            if not _same(mac, _mac(key, "operator-session", self.merchant, name, generation,
                                   expiry)):
                return None
            account = self._store.operator_account(self.merchant, name)
            if account is None or account["generation"] != int(generation):
                return None  # removed, signed out everywhere, or a new password
            return Operator(name, Role(account["role"]), self.merchant), cookie, key
        return None

    def operator(self, request: Request) -> Operator | None:
        """Who signed *request* in (a valid session cookie or ``Bearer`` token), or None."""
        found = self._session(request)
        return found[0] if found is not None else None

    def require(self, request: Request, role: Role) -> Operator | Response:
        """The request's operator when their role is at least *role*; otherwise the
        response to send: 401 with the sign-in form when nobody is signed in, 403
        naming the role needed (recorded in the audit log when the request is not a
        GET: an action refused)."""
        operator = self.operator(request)
        if operator is None:
            return self.login_page(request)
        if operator.role >= role:
            return operator
        reason = (f"This needs the {role.label} role; {operator.name} is a "
                  f"{operator.role.label}.")
        if request.method != "GET":
            self.audit(operator, "refused", request.url.path, request, outcome="refused",
                       detail={"reason": reason, "needed": role.label})
        log.warning("console_refused", operator=operator.name, needed=role.label)
        return html(self._env, "admin_error.html",
                    {**self.context(request), "message": reason}, status=403)

    # --- CSRF ------------------------------------------------------------------------

    def csrf_token(self, request: Request) -> str:
        """The CSRF token of *request*'s session (``""`` when nobody is signed in)."""
        found = self._session(request)
        if found is None:
            return ""
        operator, session, key = found
        return _mac(key, "csrf", self.merchant, operator.name, session)

    def check_csrf(self, request: Request, form: Mapping[str, str]) -> bool:
        """Whether *form*'s ``csrf`` field is this session's token (constant time)."""
        expected = self.csrf_token(request)
        return bool(expected) and _same(str(form.get("csrf", "")), expected)

    # --- audit -----------------------------------------------------------------------

    def audit(self, operator: Operator, action: str, target: str, request: Request, *,
              outcome: str = "done", detail: Mapping[str, object] | None = None) -> None:
        """Record that *operator* did *action* (``refund``, ``sync``...) on *target*
        (a payment id, a difference...) from the request's address, with its
        *outcome* (``done``, ``refused``, ``failed``) and *detail* (masked first:
        secrets removed, personal data masked), in the store's operator audit log
        and the ``pasarela`` log."""
        self._record(operator.name, operator.role.label, action, target,
                     self.address(request), outcome, detail)

    def _record(self, name: str, role: str, action: str, target: str, address: str,
                outcome: str, detail: Mapping[str, object] | None) -> None:
        masked = mask_fields(dict(detail or {}))
        log.info("console_action", operator=name, action=action, target=target,
                 outcome=outcome, address=address)
        if self._store is not None:
            self._store.add_operator_audit(self.merchant, at=self._now(), operator=name,
                                           role=role, action=action, target=target,
                                           address=address, outcome=outcome, detail=masked)

    # --- pages -----------------------------------------------------------------------

    def context(self, request: Request) -> dict[str, Any]:
        """What every console template gets: ``lang`` (and what *locale* adds),
        ``static``, ``admin`` (the console's address), ``brand``, ``operator`` and
        ``csrf``."""
        prefix = request.scope.get("root_path", "")
        language = dict(self._locale(request)) if self._locale is not None else {"lang": "en"}
        return {**language, "static": prefix + STATIC_PATH, "admin": prefix + self.mount,
                "brand": self._brand, "operator": self.operator(request),
                "csrf": self.csrf_token(request)}

    def login_page(self, request: Request, *, error: str | None = None,
                   status: int = 401) -> Response:
        """The sign-in form, 401."""
        return html(self._env, "admin_login.html", {**self.context(request), "error": error,
                                                    "token_on": bool(self._token)},
                    status=status,
                    headers={"WWW-Authenticate": 'Bearer realm="pasarela admin"'})

    def _error(self, request: Request, message: str, status: int) -> Response:
        return html(self._env, "admin_error.html", {**self.context(request),
                                                    "message": message}, status=status)

    def _throttled(self, request: Request, account: str) -> Response | None:
        wait = self._throttle.retry_after(self.address(request), self._now(), account)
        if wait is None:
            return None
        log.warning("admin_login_throttled", address=self.address(request))
        return Response("Too many failed sign-ins; try again later.\n", status_code=429,
                        headers={**SECURITY_HEADERS, "Retry-After": str(int(wait + 0.999))},
                        media_type="text/plain")

    def _signed_in(self, request: Request, value: str) -> Response:
        admin = self.context(request)["admin"]
        response = RedirectResponse(admin, 303, headers=SECURITY_HEADERS)
        response.set_cookie(self.cookie, value, max_age=int(SESSION_TTL.total_seconds()),
                            path=admin, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")
        return response

    async def _login(self, request: Request) -> Response:
        if request.method == "GET":
            if self.operator(request) is not None:
                return RedirectResponse(self.context(request)["admin"], 303,
                                        headers=SECURITY_HEADERS)
            return self.login_page(request)
        form = await read_form(request)
        if form.get("token"):
            return self._token_login(request, form["token"])
        return await self._operator_login(request, form.get("name", "").strip().lower(),
                                          form.get("password", ""))

    def _token_login(self, request: Request, given: str) -> Response:
        refused = self._throttled(request, ACCOUNT)
        if refused is not None:
            return refused
        token = self._token
        address = self.address(request)
        if not token or not _same(given, token):
            self._throttle.failed(address, self._now())
            log.warning("admin_login_failed")
            return self.login_page(request, error="That token is not right.")
        self._throttle.succeeded(address)
        expiry = str(int((self._now() + SESSION_TTL).timestamp()))
        self._record(BREAK_GLASS, Role.ADMIN.label, "sign_in", BREAK_GLASS, address, "done",
                     None)
        log.info("admin_login")
        return self._signed_in(request, f"{expiry}.{_mac(token, 'admin-session', expiry)}")

    async def _operator_login(self, request: Request, name: str, password: str) -> Response:
        address = self.address(request)
        account = name if _NAME.match(name) else "?"
        refused = self._throttled(request, account)
        if refused is not None:
            return refused
        store = self._store
        if store is None or account == "?" or not password:
            await anyio.to_thread.run_sync(verify_password, None, password)  # as long
            self._throttle.failed(address, self._now(), account)
            return self.login_page(request, error="That name or password is not right.")
        stored = await anyio.to_thread.run_sync(store.operator_password_hash, self.merchant,
                                                name)
        ok = await anyio.to_thread.run_sync(verify_password, stored, password)
        found = store.operator_account(self.merchant, name) if ok else None
        if found is None:
            self._throttle.failed(address, self._now(), account)
            # an unknown name is not recorded: it may be a password typed in the wrong box
            self._record(name if stored is not None else "?", "", "sign_in",
                         name if stored is not None else "?", address, "refused",
                         {"reason": "wrong password" if stored is not None
                          else "no such operator"})
            log.warning("admin_login_failed")
            return self.login_page(request, error="That name or password is not right.")
        self._throttle.succeeded(address)
        role = Role(found["role"])
        generation = str(found["generation"])
        expiry = str(int((self._now() + SESSION_TTL).timestamp()))
        mac = _mac(self._console_key(), "operator-session", self.merchant, name, generation,
                   expiry)
        self._record(name, role.label, "sign_in", name, address, "done", None)
        return self._signed_in(request, f"{name}.{generation}.{expiry}.{mac}")

    async def _signed_in_form(self, request: Request) -> Operator | Response:
        form = await read_form(request)
        operator = self.operator(request)
        if operator is None:
            return self.login_page(request)
        if not self.check_csrf(request, form):
            self.audit(operator, "csrf_refused", request.url.path, request, outcome="refused",
                       detail={"reason": "CSRF check failed"})
            return self._error(request, "CSRF check failed: reload the page and try again.",
                               403)
        return operator

    def _signed_out(self, request: Request) -> Response:
        admin = self.context(request)["admin"]
        response = RedirectResponse(admin + "/login", 303, headers=SECURITY_HEADERS)
        response.delete_cookie(self.cookie, path=admin, httponly=True, samesite="strict",
                               secure=request.url.scheme == "https")
        return response

    async def _logout(self, request: Request) -> Response:
        operator = await self._signed_in_form(request)
        if isinstance(operator, Response):
            return operator
        self.audit(operator, "sign_out", operator.name, request)
        return self._signed_out(request)

    async def _everywhere(self, request: Request) -> Response:
        operator = await self._signed_in_form(request)
        if isinstance(operator, Response):
            return operator
        if operator.name == BREAK_GLASS or self._store is None:
            self.audit(operator, "sign_out_everywhere", operator.name, request,
                       outcome="refused", detail={"reason": "admin token"})
            return self._error(request, "The admin token's sessions end when the token "
                               "changes; sign out, or change the token.", 409)
        try:
            await anyio.to_thread.run_sync(self._store.end_operator_sessions, self.merchant,
                                           operator.name)
        except NotFoundError:
            return self.login_page(request)
        self.audit(operator, "sign_out_everywhere", operator.name, request)
        return self._signed_out(request)

    async def _account(self, request: Request) -> Response:
        operator = self.require(request, Role.VIEWER)
        if isinstance(operator, Response):
            return operator
        accounts: list[dict[str, Any]] = []
        entries: list[dict[str, Any]] = []
        if operator.role >= Role.ADMIN and self._store is not None:
            store = self._store
            accounts = await anyio.to_thread.run_sync(store.operator_accounts, self.merchant)
            entries = await anyio.to_thread.run_sync(
                lambda: store.operator_audit_log(self.merchant, limit=100))
        return html(self._env, "admin_account.html", {
            **self.context(request), "me": operator, "break_glass": BREAK_GLASS,
            "accounts": [{**a, "role": Role(a["role"]).label} for a in accounts],
            "entries": entries})

    def routes(self) -> list[BaseRoute]:
        """The console's own routes: ``/login`` (GET, POST), ``/logout`` and
        ``/sign-out-everywhere`` (POST, with CSRF) and ``/account`` (who is signed
        in; for an admin, the operators and the audit log)."""
        return [Route(f"{self.mount}/login", self._login, methods=["GET", "POST"]),
                Route(f"{self.mount}/logout", self._logout, methods=["POST"]),
                Route(f"{self.mount}/sign-out-everywhere", self._everywhere,
                      methods=["POST"]),
                Route(f"{self.mount}/account", self._account, methods=["GET"])]
