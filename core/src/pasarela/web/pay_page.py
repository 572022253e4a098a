"""The customer payment page (and the hook that mounts the operator dashboard).

``GET /pay/{payment_id}?t=TOKEN``
    What the customer must do to pay: for a cash code (a PagoEfectivo CIP) the code,
    the amount, the expiry in Lima time with a countdown, the QR and the channels;
    for a wallet QR the QR; for a provider's own checkout (``open_checkout``: Culqi's
    checkout, which draws the wallet QR of a Yape/Plin order) a button that opens it,
    a link and the instructions; for a card the next step. Then the paid, expired,
    canceled or failed state. Spanish unless ``Accept-Language`` prefers English.
``GET /pay/{payment_id}/status?t=TOKEN``
    ``{"state": ...}`` for the page's polling script (no-store).

The link carries a token: ``EXPIRY.SIGNATURE``, the signature an HMAC-SHA256 with
the page secret over the payment id and the expiry. A tampered, foreign or expired
token answers the same 404 as a payment that does not exist, and the token is
checked before the store is read, so nobody can enumerate payments. Hosts build
links with :func:`pay_link`.

Every page answers with a Content-Security-Policy that allows only this app's own
files (no inline script or style), ``Referrer-Policy: no-referrer``,
``X-Content-Type-Options: nosniff`` and ``frame-ancestors 'none'``. The one exception
is the page of an ``open_checkout`` payment: its policy adds exactly the origin of the
checkout script (``scheme://host[:port]`` of ``script_url``) to ``script-src`` (the
script itself), ``frame-src`` (the checkout draws itself in a frame from its origin)
and ``connect-src`` (it may call its origin back), and nothing else
(:func:`checkout_origin`, :func:`checkout_policy`). A script that is not ``https``
(``http`` only on loopback, for a sandbox) is not loaded at all: the page shows the
link and the instructions.

Configuration (there is no ``[pages]`` table in ``pasarela.toml`` yet): pass
:class:`PageSettings` to ``create_app(pasarela, pages=...)``, or set
``PASARELA_PAGE_SECRET`` (turns the customer page on), ``PASARELA_ADMIN_TOKEN``
(turns ``/admin`` on) and optionally ``PASARELA_RENEW_URL`` (the "new code" link,
``{order_reference}`` is replaced) in the environment.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote, urlsplit

import anyio.to_thread
import attrs
from babel.dates import format_datetime
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pasarela.api import AsyncPasarela, Pasarela
from pasarela.config.sections import LOGO_TYPES, logo_path
from pasarela.errors import NotFoundError, PasarelaError
from pasarela.lifecycle import Status
from pasarela.model import Payment
from pasarela.next_action import (
    ApproveInWallet,
    BankTransfer,
    ConfirmCard,
    OpenCheckout,
    OpenUrl,
    ScanQr,
    ShowCashCode,
    qr_svg,
)
from pasarela.provider import collected_by
from pasarela.registry import merchant_of
from pasarela.timezones import LIMA
from pasarela.web.branding import (
    BRAND_PATH,
    Branding,
    branding_of,
    stylesheet,
    template_branding,
)


if TYPE_CHECKING:
    import jinja2

    from pasarela.config import PagesConfig

__all__ = [
    "SECURITY_HEADERS",
    "PageSettings",
    "check_page_token",
    "checkout_origin",
    "checkout_policy",
    "negotiate_language",
    "page_policy",
    "page_state",
    "page_token",
    "pay_link",
    "routes",
]

_HERE: Final = Path(__file__).parent
#: Where the page's CSS and script are served from (inside the app's root path).
STATIC_PATH: Final = "/pasarela-static"
DEFAULT_LINK_TTL: Final = timedelta(days=7)

SECURITY_HEADERS: Final[Mapping[str, str]] = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

_ID_RE: Final = re.compile(r"^[0-9A-Za-z]{1,40}$")
_LOOPBACK: Final = frozenset({"127.0.0.1", "localhost", "::1"})
_HOST_RE: Final = re.compile(r"^[A-Za-z0-9.-]{1,253}$|^\[[0-9A-Fa-f:.]+\]$")


def checkout_origin(script_url: str) -> str | None:
    """``scheme://host[:port]`` of a checkout script, or None when the page must not
    load it: not ``https`` (``http`` is allowed on loopback only, for a sandbox), a
    user or password in it, or a host that is not a plain name or address."""
    try:
        parts = urlsplit(script_url)
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname or ""
    if parts.username is not None or parts.password is not None or not host:
        return None
    if parts.scheme == "https" or (parts.scheme == "http" and host in _LOOPBACK):
        pass
    else:
        return None
    shown = f"[{host}]" if ":" in host else host
    if not _HOST_RE.match(shown):
        return None
    return f"{parts.scheme}://{shown}" + (f":{port}" if port is not None else "")


def checkout_policy(origin: str) -> str:
    """The page's Content-Security-Policy with the checkout's *origin* added to
    ``script-src``, ``frame-src`` and ``connect-src`` (and nowhere else)."""
    return page_policy(checkout=origin)


def page_policy(*, checkout: str | None = None, image: str | None = None) -> str:
    """The page's Content-Security-Policy: :data:`SECURITY_HEADERS`' own, with a
    checkout's origin added to ``script-src``, ``frame-src`` and ``connect-src``, and
    a merchant's logo origin (``https://host``) to ``img-src``, and nowhere else."""
    images = f"img-src 'self' data: {image}" if image else "img-src 'self' data:"
    if checkout is None:
        return (f"default-src 'none'; script-src 'self'; style-src 'self'; {images}; "
                "connect-src 'self'; form-action 'self'; base-uri 'none'; "
                "frame-ancestors 'none'")
    return (
        f"default-src 'none'; script-src 'self' {checkout}; style-src 'self'; "
        f"{images}; connect-src 'self' {checkout}; frame-src {checkout}; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )


@attrs.frozen(kw_only=True)
class PageSettings:
    """What the pages need. A ``None`` secret or token turns that part off."""

    page_secret: str | None = attrs.field(default=None, repr=False)
    admin_token: str | None = attrs.field(default=None, repr=False)
    #: Link for "generar un nuevo código"; ``{order_reference}`` is replaced.
    renew_url: str | None = None
    #: A pending payment older than this is "stale" on the dashboard.
    stale_after: timedelta = timedelta(hours=1)
    #: How often the customer page polls the status endpoint.
    poll_seconds: int = 5

    @classmethod
    def from_config(cls, section: PagesConfig,
                    environ: Mapping[str, str] | None = None) -> PageSettings:
        """``[pages]`` of the configuration; the environment when it sets nothing."""
        if not section.page_secret and not section.admin_token:
            return cls.from_env(environ)
        return cls(page_secret=section.page_secret, admin_token=section.admin_token,
                   renew_url=section.renew_url, stale_after=section.stale_after,
                   poll_seconds=section.poll_seconds)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PageSettings:
        env = os.environ if environ is None else environ
        return cls(page_secret=env.get("PASARELA_PAGE_SECRET") or None,
                   admin_token=env.get("PASARELA_ADMIN_TOKEN") or None,
                   renew_url=env.get("PASARELA_RENEW_URL") or None)


# --- tokens -------------------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _signature(payment_id: str, expiry: int, secret: str) -> str:
    message = f"pasarela.pay.v1\x00{payment_id}\x00{expiry}".encode()
    return _b64(hmac.new(secret.encode(), message, hashlib.sha256).digest())


def page_token(payment_id: str, secret: str, expires_at: datetime) -> str:
    """The token for *payment_id*'s page, valid until *expires_at*."""
    if not secret:
        raise ValueError("the page secret is empty")
    expiry = int(expires_at.timestamp())
    return f"{expiry}.{_signature(payment_id, expiry, secret)}"


def check_page_token(payment_id: str, token: str, secret: str, *,
                     now: datetime | None = None) -> bool:
    """True when *token* was made for *payment_id* with *secret* and has not expired."""
    expiry_text, _, given = token.partition(".")
    if not expiry_text.isdigit() or len(expiry_text) > 12 or not given:
        return False
    expected = _signature(payment_id, int(expiry_text), secret)
    if not hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace")):
        return False
    return int(expiry_text) > (now or datetime.now(UTC)).timestamp()


def pay_link(payment_id: str, secret: str, ttl: timedelta = DEFAULT_LINK_TTL, *,
             base_url: str = "", now: datetime | None = None) -> str:
    """The customer page's link for *payment_id*, valid for *ttl*.

    *base_url* is where the app is mounted (``https://shop.pe/pasarela``).
    """
    token = page_token(payment_id, secret, (now or datetime.now(UTC)) + ttl)
    return f"{base_url.rstrip('/')}/pay/{quote(payment_id, safe='')}?t={token}"


# --- language -----------------------------------------------------------------------

LANGUAGES: Final = ("es", "en")


def negotiate_language(header: str | None) -> str:
    """``es`` or ``en`` from an ``Accept-Language`` header (Spanish by default)."""
    best, best_q = "es", 0.0
    for position, part in enumerate((header or "").split(",")):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in LANGUAGES:
            continue
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        q -= position * 1e-6  # earlier wins a tie
        if q > best_q:
            best, best_q = primary, q
    return best


MESSAGES: Final[Mapping[str, Mapping[str, str]]] = {
    "es": {
        "title": "Tu pago", "order": "Pedido", "amount": "Monto a pagar",
        "fx": "Se cobra {charged} por un precio de {price} (tipo de cambio: 1 {source} = "
              "{rate} {target}).",
        "code_label": "Código de pago (CIP)", "copy_code": "Copiar código", "copied": "Copiado",
        "expires": "Paga antes del", "lima": "hora de Lima", "left": "Tiempo restante",
        "qr_label": "Código QR del pago {code}", "qr_wallet_label": "Código QR para pagar",
        "where": "Dónde pagar",
        "ch_bank": "Banca por internet o app del banco",
        "ch_bank_steps": "Entra a «Pago de servicios», busca PagoEfectivo y escribe el código.",
        "ch_agent": "Agentes y agencias bancarias",
        "ch_agent_steps": "Di que pagas a PagoEfectivo, da el código y paga el monto.",
        "ch_bodega": "Bodegas y agentes Kasnet",
        "ch_bodega_steps": "Pide pagar un código PagoEfectivo y da el código.",
        "provider_steps": "Indicaciones del proveedor",
        "cip_url": "Ver el código en la página de PagoEfectivo",
        "scan": "Escanea el código QR y paga desde Yape o Plin.",
        "approve": "Aprueba el pago en tu app {wallet} y vuelve a la tienda.",
        "card": "Tu banco pide un paso más para completar el pago con tarjeta.",
        "card_go": "Continuar con la verificación",
        "card_shop": "Vuelve a la página de la tienda para confirmar la tarjeta.",
        "open": "Continúa el pago en la página del proveedor.", "open_go": "Continuar",
        "checkout": "Paga desde Yape, Plin u otra billetera en el checkout de {provider}.",
        "checkout_go": "Pagar con {provider}",
        "checkout_link": "Abrir esta página en tu celular",
        "checkout_missing": "No pudimos abrir el checkout aquí: abre el enlace o actualiza "
        "la página.",
        "cash_code": "Código CIP de PagoEfectivo",
        "transfer": "Transfiere el monto desde tu banco a esta cuenta.",
        "transfer_bank": "Banco", "transfer_holder": "Titular", "transfer_account": "Cuenta",
        "transfer_reference": "Referencia (escríbela en la transferencia)",
        "transfer_url": "Ver los datos de la transferencia en la página del proveedor",
        "processing": "Estamos confirmando tu pago. Esta página se actualiza sola.",
        "paid": "¡Pago recibido!", "paid_body": "Gracias. Tu pago de {amount} está confirmado.",
        "expired": "El código venció",
        "expired_body": "Este código ya no se puede pagar.",
        "renew": "Generar un nuevo código",
        "canceled": "Pago anulado", "canceled_body": "Este pago fue anulado.",
        "failed": "El pago no se completó",
        "refresh": "Actualizar", "waiting": "Esperando tu pago…",
        "auto": "Esta página se actualiza sola cuando recibimos el pago.",
    },
    "en": {
        "title": "Your payment", "order": "Order", "amount": "Amount to pay",
        "fx": "You are charged {charged} for a price of {price} (exchange rate: 1 {source} = "
              "{rate} {target}).",
        "code_label": "Payment code (CIP)", "copy_code": "Copy code", "copied": "Copied",
        "expires": "Pay before", "lima": "Lima time", "left": "Time left",
        "qr_label": "QR code of payment {code}", "qr_wallet_label": "QR code to pay",
        "where": "Where to pay",
        "ch_bank": "Online banking or your bank's app",
        "ch_bank_steps": "Open “Pay services”, look for PagoEfectivo and type the code.",
        "ch_agent": "Bank agents and branches",
        "ch_agent_steps": "Say you are paying PagoEfectivo, give the code and pay the amount.",
        "ch_bodega": "Corner shops and Kasnet agents",
        "ch_bodega_steps": "Ask to pay a PagoEfectivo code and give the code.",
        "provider_steps": "The provider's instructions",
        "cip_url": "See the code on PagoEfectivo's page",
        "scan": "Scan the QR code and pay from Yape or Plin.",
        "approve": "Approve the payment in your {wallet} app and go back to the shop.",
        "card": "Your bank needs one more step to complete the card payment.",
        "card_go": "Continue to verification",
        "card_shop": "Go back to the shop's page to confirm the card.",
        "open": "Continue the payment on the provider's page.", "open_go": "Continue",
        "checkout": "Pay from Yape, Plin or another wallet in {provider}'s checkout.",
        "checkout_go": "Pay with {provider}",
        "checkout_link": "Open this page on your phone",
        "checkout_missing": "We could not open the checkout here: open the link or refresh "
        "the page.",
        "cash_code": "PagoEfectivo CIP code",
        "transfer": "Transfer the amount from your bank to this account.",
        "transfer_bank": "Bank", "transfer_holder": "Holder", "transfer_account": "Account",
        "transfer_reference": "Reference (write it in the transfer)",
        "transfer_url": "See the transfer details on the provider's page",
        "processing": "We are confirming your payment. This page updates itself.",
        "paid": "Payment received!", "paid_body": "Thank you. Your payment of {amount} is "
        "confirmed.",
        "expired": "The code has expired",
        "expired_body": "This code can no longer be paid.",
        "renew": "Generate a new code",
        "canceled": "Payment canceled", "canceled_body": "This payment was canceled.",
        "failed": "The payment did not go through",
        "refresh": "Refresh", "waiting": "Waiting for your payment…",
        "auto": "This page updates itself when we receive the payment.",
    },
}

_PAID: Final = frozenset({Status.SUCCEEDED, Status.PARTIALLY_REFUNDED, Status.REFUNDED})


def page_state(payment: Payment, now: datetime) -> str:
    """What the page shows: ``cash``, ``qr``, ``approve``, ``card``, ``open_url``,
    ``checkout``, ``transfer``, ``processing``, ``paid``, ``expired``, ``canceled`` or
    ``failed``."""
    status = payment.status
    if status in _PAID:
        return "paid"
    if status in (Status.EXPIRED, Status.CANCELED, Status.FAILED):
        return status.value
    if status is Status.PENDING and payment.expires_at is not None and payment.expires_at <= now:
        return "expired"
    action = payment.next_action
    if status is Status.PENDING:
        if isinstance(action, ShowCashCode):
            return "cash"
        if isinstance(action, ScanQr):
            return "qr"
        if isinstance(action, ApproveInWallet):
            return "approve"
        if isinstance(action, ConfirmCard):
            return "card"
        if isinstance(action, OpenUrl):
            return "open_url"
        if isinstance(action, OpenCheckout):
            return "checkout"
        if isinstance(action, BankTransfer):
            return "transfer"
    return "processing"


# --- rendering ------------------------------------------------------------------------


def template_environment() -> jinja2.Environment:
    import jinja2  # noqa: PLC0415 - only when the pages are turned on

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_HERE / "templates")),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["money"] = lambda m, lang="es": m.format("es_PE" if lang == "es" else "en_US")
    return env


def html(env: jinja2.Environment, name: str, context: Mapping[str, Any], *,
         status: int = 200, headers: Mapping[str, str] | None = None) -> HTMLResponse:
    body = env.get_template(name).render(**context)
    return HTMLResponse(body, status, headers={**SECURITY_HEADERS, **(headers or {})})


def not_found(env: jinja2.Environment, lang: str, prefix: str) -> HTMLResponse:
    return html(env, "not_found.html", {"lang": lang, "static": prefix + STATIC_PATH}, status=404)


_SVG_SIZE: Final = re.compile(r'^<svg width="(\d+)" height="(\d+)"')


def scalable_svg(svg: str) -> str:
    """A fixed-size QR SVG given a ``viewBox``, so CSS can scale it for a phone."""
    return _SVG_SIZE.sub(r'<svg viewBox="0 0 \1 \2" preserveAspectRatio="xMidYMid meet"', svg,
                         count=1)


def lima_time(value: datetime, lang: str) -> str:
    pattern = "EEEE d 'de' MMMM, HH:mm" if lang == "es" else "EEEE, MMMM d, HH:mm"
    return str(format_datetime(value.astimezone(LIMA), pattern,
                               locale="es_PE" if lang == "es" else "en_US"))


def routes(pasarela: AsyncPasarela | Pasarela, settings: PageSettings | None = None, *,
           clock: Callable[[], datetime] | None = None,
           merchant: str | None = None) -> list[BaseRoute]:
    """The page routes to add to the ASGI app: the static files and the merchants'
    branding, ``/pay`` when a page secret is set, and the consoles (``/admin``,
    ``/m/NAME/admin``: served once they have an admin token or an operator account;
    :func:`pasarela.web.admin.routes`). Nothing without a page secret or admin token.

    *settings* default to the configuration's ``[pages]`` section, else to
    :meth:`PageSettings.from_env`; *clock* to pasarela's own. With *merchant*, that
    merchant's pages only: the customer page of its own payments (another's is 404),
    its own console (``/m/NAME/admin``) and its own branding.
    """
    settings = settings or PageSettings.from_config(pasarela.config.pages)
    if not settings.page_secret and not settings.admin_token:
        return []
    now = clock or pasarela.service.clock  # business time, as the rest of pasarela
    env = template_environment()
    find = _brand_finder(pasarela, merchant)
    env.globals["branding"] = template_branding(find)
    static = _with_headers(StaticFiles(directory=str(_HERE / "static")))
    out: list[BaseRoute] = [Mount(STATIC_PATH, app=static, name="pasarela-static"),
                            *_brand_routes(find)]
    if settings.page_secret:
        out += _customer_routes(pasarela, settings, env, now, find, merchant)
    from pasarela.web import admin as pages_admin  # noqa: PLC0415 - only with the pages on

    # each console is built on its first request; 404 while it has no credential
    out += pages_admin.routes(pasarela, settings, env, now, merchant=merchant)
    return out


def _brand_finder(pasarela: AsyncPasarela | Pasarela, only: str | None = None
                 ) -> Callable[[str], Branding | None]:
    """Merchant name to its :class:`~pasarela.web.branding.Branding` (None: the
    implicit merchant, an unknown or broken one, or with *only* any merchant but
    that one); each built once."""
    found: dict[str, Branding | None] = {}

    def find(name: str) -> Branding | None:
        if name in found:
            return found[name]
        brand = None
        if name and name in pasarela.merchants and (only is None or name == only):
            try:
                table = pasarela.merchants.table(name)
            except PasarelaError:
                return None  # broken: its pages go without branding (not cached)
            logo = (str(logo_path(pasarela.config.source, table.logo_file))
                    if table.logo_file else None)
            brand = branding_of(name, table, logo)
        found[name] = brand
        return brand

    return find


def _brand_routes(find: Callable[[str], Branding | None]) -> list[BaseRoute]:
    """``/pasarela-brand/NAME/style.css`` and ``/pasarela-brand/NAME/logo``: public,
    as the pages that use them are, and 404 for a merchant without them."""
    headers = {**{k: v for k, v in SECURITY_HEADERS.items() if k != "Cache-Control"},
               "Cache-Control": "public, max-age=3600"}

    def missing() -> Response:
        return Response("not found\n", 404, media_type="text/plain",
                        headers=dict(SECURITY_HEADERS))

    async def style(request: Request) -> Response:
        brand = find(request.path_params["merchant"])
        if brand is None:
            return missing()
        return Response(stylesheet(brand), media_type="text/css", headers=headers)

    async def logo(request: Request) -> Response:
        brand = find(request.path_params["merchant"])
        if brand is None or brand.logo_file is None:
            return missing()
        path = Path(brand.logo_file)
        try:
            body = await anyio.to_thread.run_sync(path.read_bytes)
        except OSError:
            return missing()
        return Response(body, media_type=LOGO_TYPES[path.suffix.lower()], headers=headers)

    return [
        Route(BRAND_PATH + "/{merchant}/style.css", style, methods=["GET"],
              name="pasarela-brand-style"),
        Route(BRAND_PATH + "/{merchant}/logo", logo, methods=["GET"],
              name="pasarela-brand-logo"),
    ]


def _with_headers(app: ASGIApp) -> ASGIApp:
    """*app* with :data:`SECURITY_HEADERS` added to its responses (the static files).
    They are cached for an hour, not ``no-store``."""
    extra = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()
             if k != "Cache-Control"] + [(b"cache-control", b"public, max-age=3600")]

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await app(scope, receive, send_with_headers)

    return wrapped


def _customer_routes(pasarela: AsyncPasarela | Pasarela, settings: PageSettings,
                     env: jinja2.Environment, now: Callable[[], datetime],
                     find: Callable[[str], Branding | None],
                     merchant: str | None) -> list[BaseRoute]:
    secret = settings.page_secret or ""
    brand_view = template_branding(find)

    async def load(request: Request) -> Payment | None:
        payment_id = request.path_params["payment_id"]
        token = request.query_params.get("t", "")
        if not _ID_RE.match(payment_id) or not check_page_token(payment_id, token, secret,
                                                                   now=now()):
            return None
        try:
            payment = await anyio.to_thread.run_sync(pasarela.store.get_payment, payment_id)
        except NotFoundError:
            return None
        if merchant is not None and merchant_of(payment.provider) != merchant:
            return None  # another merchant's, on a server of one merchant: as none
        return payment

    async def page(request: Request) -> Response:
        lang = negotiate_language(request.headers.get("accept-language"))
        prefix = request.scope.get("root_path", "")
        payment = await load(request)
        if payment is None:
            return not_found(env, lang, prefix)
        at = now()
        state = page_state(payment, at)
        action = payment.next_action
        token = request.query_params["t"]
        renew = None
        if state in ("expired", "canceled", "failed") and settings.renew_url:
            renew = settings.renew_url.replace(
                "{order_reference}", quote(payment.order_reference, safe=""))
        expires_at = getattr(action, "expires_at", None) or payment.expires_at
        instructions: tuple[str, ...] = ()
        if isinstance(action, ShowCashCode | ScanQr | ApproveInWallet | OpenCheckout
                      | BankTransfer):
            instructions = tuple(action.instructions.get(lang) or
                                 action.instructions.get("es") or ())
        checkout_script = None
        headers: dict[str, str] = {}
        origin = None
        if isinstance(action, OpenCheckout) and state == "checkout":
            origin = checkout_origin(action.script_url)
            if origin is not None:
                checkout_script = action.script_url
        brand = find(merchant_of(payment.provider))
        image = brand.image_origin if brand is not None else None
        if origin is not None or image is not None:
            headers["Content-Security-Policy"] = page_policy(checkout=origin, image=image)
        qr = None
        if isinstance(action, ShowCashCode) and state == "cash":
            qr = scalable_svg(action.qr_svg or qr_svg(action.url or action.code))
        elif isinstance(action, ScanQr) and state == "qr":
            qr = scalable_svg(action.qr_svg)
        adapter = pasarela.providers.get(payment.provider)
        network_line = (collected_by(payment.method, payment.network, adapter.display_name,
                                     language=lang) if adapter is not None else "")
        fx_line = None
        if payment.charged is not None and payment.fx_rate is not None:
            money_locale = "es_PE" if lang == "es" else "en_US"
            fx_line = MESSAGES[lang]["fx"].format(
                charged=payment.charged.format(money_locale),
                price=payment.amount.format(money_locale), source=payment.amount.currency,
                rate=payment.fx_rate, target=payment.charged.currency)
        context = {
            "brand": brand_view(brand.merchant, prefix) if brand else None,
            "brand_css": prefix + brand.stylesheet_path if brand else None,
            "network_line": network_line, "fx_line": fx_line,
            "qr": qr, "lang": lang, "t": MESSAGES[lang], "state": state, "payment": payment,
            "action": action, "static": prefix + STATIC_PATH,
            "status_url": f"{prefix}/pay/{payment.id}/status?t={token}",
            "self_url": f"{prefix}/pay/{payment.id}?t={token}",
            "amount": (action.amount if isinstance(action, BankTransfer) and
                       state == "transfer" else payment.amount).format(
                           "es_PE" if lang == "es" else "en_US"),
            "description": payment.order.description if payment.order else "",
            "expires_text": lima_time(expires_at, lang) if expires_at else None,
            "expires_iso": expires_at.astimezone(UTC).isoformat() if expires_at else None,
            "renew_url": renew, "instructions": instructions,
            "poll": state not in ("paid", "canceled", "failed"),
            "poll_ms": settings.poll_seconds * 1000,
            "error_message": payment.customer_message(lang) if state == "failed" else None,
            "card_url": action.url if isinstance(action, ConfirmCard) else None,
            "checkout_script": checkout_script,
            "checkout_name": (action.provider.capitalize()
                              if isinstance(action, OpenCheckout) else ""),
        }
        return html(env, "pay.html", context, headers=headers)

    async def status(request: Request) -> Response:
        payment = await load(request)
        if payment is None:
            return JSONResponse({"error": "not found"}, 404, headers=dict(SECURITY_HEADERS))
        return JSONResponse({"state": page_state(payment, now()), "status": payment.status.value},
                            headers=dict(SECURITY_HEADERS))

    return [
        Route("/pay/{payment_id}", page, methods=["GET"], name="pasarela-pay"),
        Route("/pay/{payment_id}/status", status, methods=["GET"], name="pasarela-pay-status"),
    ]
