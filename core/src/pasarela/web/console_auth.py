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
refund, extend, resolve a difference), an admin also manages the console. The
``admin_token`` of the configuration is the break-glass credential: whoever holds
it is an :attr:`Role.ADMIN` named :data:`BREAK_GLASS`.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Final
from urllib.parse import parse_qs

import attrs
import jinja2
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from pasarela.logs import get_logger, mask_fields
from pasarela.web.pay_page import SECURITY_HEADERS, STATIC_PATH, html
from pasarela.web.throttle import LoginThrottle


__all__ = ["BREAK_GLASS", "ConsoleGuard", "Operator", "Role", "read_form"]

log = get_logger("pasarela")

#: The operator name the admin token signs in as.
BREAK_GLASS: Final = "@admin-token"
COOKIE: Final = "pasarela_admin"
SESSION_TTL: Final = timedelta(hours=12)
#: The largest form body a console POST reads.
MAX_FORM: Final = 8192


class Role(enum.IntEnum):
    """What an operator may do; each role may do everything the lower ones may."""

    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()


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
    docs). Built on a console's first request, kept for the process."""

    def __init__(self, *, merchant: str, mount: str, token: str | None,
                 env: jinja2.Environment, now: Callable[[], datetime],
                 brand: Mapping[str, Any] | None = None,
                 throttle: LoginThrottle | None = None,
                 locale: Callable[[Request], Mapping[str, Any]] | None = None) -> None:
        self.merchant = merchant
        #: Where the console's routes live: ``/admin`` or ``/m/NAME/admin``.
        self.mount = mount
        self.cookie = COOKIE if not merchant else f"{COOKIE}_{merchant}"
        self._token = token
        self._env = env
        self._now = now
        self._brand = dict(brand or {})
        self._throttle = throttle or LoginThrottle()
        self._locale = locale

    # --- who -------------------------------------------------------------------------

    @staticmethod
    def address(request: Request) -> str:
        """The client's address (what the audit log and the throttle record)."""
        return request.client.host if request.client else "unknown"

    def _session(self, request: Request) -> tuple[Operator, str] | None:
        """The request's operator and the session id its CSRF token is bound to."""
        cached = getattr(request.state, "pasarela_console", None)
        if cached is not None:
            return cached if cached != () else None
        found = self._find_session(request)
        request.state.pasarela_console = found if found is not None else ()
        return found

    def _find_session(self, request: Request) -> tuple[Operator, str] | None:
        token = self._token
        if not token:
            return None
        now = self._now()
        auth = request.headers.get("authorization", "")
        scheme, _, given = auth.partition(" ")
        if scheme.lower() == "bearer" and given:
            if (self._throttle.retry_after(self.address(request), now) is None
                    and _same(given.strip(), token)):
                return Operator(BREAK_GLASS, Role.ADMIN, self.merchant), "bearer"
            self._throttle.failed(self.address(request), now)  # a guessed token counts too
        cookie = request.cookies.get(self.cookie, "")
        expiry, _, mac = cookie.partition(".")
        if (expiry.isdigit() and mac and _same(mac, _mac(token, "admin-session", expiry))
                and int(expiry) > now.timestamp()):
            return Operator(BREAK_GLASS, Role.ADMIN, self.merchant), cookie
        return None

    def operator(self, request: Request) -> Operator | None:
        """Who signed *request* in (a valid session cookie or ``Bearer`` token), or None."""
        found = self._session(request)
        return found[0] if found is not None else None

    def require(self, request: Request, role: Role) -> Operator | Response:
        """The request's operator when their role is at least *role*; otherwise the
        response to send: 401 with the sign-in form when nobody is signed in, 403
        naming the role needed (and recorded in the audit log for a POST)."""
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
        return _mac(self._csrf_key(), "csrf", found[0].name, found[1])

    def check_csrf(self, request: Request, form: Mapping[str, str]) -> bool:
        """Whether *form*'s ``csrf`` field is this session's token (constant time)."""
        expected = self.csrf_token(request)
        return bool(expected) and _same(str(form.get("csrf", "")), expected)

    def _csrf_key(self) -> str:
        return self._token or ""

    # --- audit -----------------------------------------------------------------------

    def audit(self, operator: Operator, action: str, target: str, request: Request, *,
              outcome: str = "done", detail: Mapping[str, object] | None = None) -> None:
        """Record that *operator* did *action* (``refund``, ``sync``...) on *target*
        (a payment id, a difference...) from the request's address, with its
        *outcome* (``done``, ``refused``, ``failed``) and *detail* (masked: secrets
        removed, personal data masked)."""
        log.info("console_action", operator=operator.name, action=action, target=target,
                 outcome=outcome, address=self.address(request),
                 **mask_fields(dict(detail or {})))

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

    def login_page(self, request: Request, *, error: str | None = None) -> Response:
        """The sign-in form, 401."""
        return html(self._env, "admin_login.html", {**self.context(request), "error": error},
                    status=401, headers={"WWW-Authenticate": 'Bearer realm="pasarela admin"'})

    def _throttled(self, request: Request) -> Response | None:
        wait = self._throttle.retry_after(self.address(request), self._now())
        if wait is None:
            return None
        log.warning("admin_login_throttled", address=self.address(request))
        return Response("Too many failed sign-ins; try again later.\n", status_code=429,
                        headers={**SECURITY_HEADERS, "Retry-After": str(int(wait + 0.999))},
                        media_type="text/plain")

    async def _login(self, request: Request) -> Response:
        admin = self.context(request)["admin"]
        if request.method == "GET":
            if self.operator(request) is not None:
                return RedirectResponse(admin, 303, headers=SECURITY_HEADERS)
            return self.login_page(request)
        refused = self._throttled(request)
        if refused is not None:
            return refused
        form = await read_form(request)
        token = self._token
        if not token or not _same(form.get("token", ""), token):
            self._throttle.failed(self.address(request), self._now())
            log.warning("admin_login_failed")
            return self.login_page(request, error="That token is not right.")
        self._throttle.succeeded(self.address(request))
        expiry = str(int((self._now() + SESSION_TTL).timestamp()))
        response = RedirectResponse(admin, 303, headers=SECURITY_HEADERS)
        response.set_cookie(self.cookie, f"{expiry}.{_mac(token, 'admin-session', expiry)}",
                            max_age=int(SESSION_TTL.total_seconds()), path=admin,
                            httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")
        log.info("admin_login")
        return response

    async def _logout(self, request: Request) -> Response:
        form = await read_form(request)
        operator = self.operator(request)
        if operator is None:
            return self.login_page(request)
        if not self.check_csrf(request, form):
            return html(self._env, "admin_error.html",
                        {**self.context(request), "message": "CSRF check failed."}, status=403)
        admin = self.context(request)["admin"]
        response = RedirectResponse(admin + "/login", 303, headers=SECURITY_HEADERS)
        response.delete_cookie(self.cookie, path=admin)
        return response

    def routes(self) -> list[BaseRoute]:
        """The console's own routes: ``/login`` (GET, POST) and ``/logout`` (POST)."""
        return [Route(f"{self.mount}/login", self._login, methods=["GET", "POST"]),
                Route(f"{self.mount}/logout", self._logout, methods=["POST"])]
