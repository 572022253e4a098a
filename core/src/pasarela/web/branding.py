"""A merchant's branding on the pages: its name, logo and colours.

A merchant's ``display_name``, ``logo_url`` or ``logo_file``, ``colour`` and ``accent``
(``[merchants.NAME]``, checked by the configuration: colours ``#rrggbb``, a logo
``https://`` or an image file) become a :class:`Branding`. The pages keep their
Content-Security-Policy without ``unsafe-inline``: the colours reach the page as a
stylesheet of the app's own (:func:`stylesheet`, served at
``/pasarela-brand/NAME/style.css``), a ``logo_file`` is served by the app at
``/pasarela-brand/NAME/logo``, and a ``logo_url``'s origin is added to ``img-src`` of
that merchant's pages only (:attr:`Branding.image_origin`).

Templates reach a merchant's branding through the Jinja global ``branding(merchant,
prefix)`` (:func:`template_branding`): None for the implicit merchant or one without
branding.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final
from urllib.parse import quote, urlsplit

import attrs


__all__ = ["BRAND_PATH", "Branding", "branding_of", "readable_on", "stylesheet",
           "template_branding"]

#: Where the merchants' stylesheets and logos are served (inside the app's root path).
BRAND_PATH: Final = "/pasarela-brand"

_DARK: Final = "#1a1a1a"
_LIGHT: Final = "#ffffff"


@attrs.frozen(kw_only=True)
class Branding:
    """What the pages show of merchant *merchant*."""

    merchant: str
    name: str
    colour: str | None = None
    accent: str | None = None
    #: The logo's address as the page uses it: an ``https://`` URL, or the app's own
    #: path (``/pasarela-brand/NAME/logo``, without the root path); None without one.
    logo: str | None = None
    #: A ``logo_file``'s path on disk (served by the app), or None.
    logo_file: str | None = None

    @property
    def stylesheet_path(self) -> str:
        """The merchant's stylesheet, under the app's root path."""
        return f"{BRAND_PATH}/{quote(self.merchant, safe='')}/style.css"

    @property
    def image_origin(self) -> str | None:
        """``https://host[:port]`` of a ``logo_url`` (for ``img-src``); None for a
        logo the app serves itself, or none."""
        if self.logo is None or not self.logo.startswith("https://"):
            return None
        parts = urlsplit(self.logo)
        if not parts.hostname:
            return None
        return f"https://{parts.netloc.rpartition('@')[2]}"

    def logo_src(self, prefix: str = "") -> str | None:
        """The logo's address in a page served under *prefix* (the root path)."""
        if self.logo is None:
            return None
        return self.logo if self.logo.startswith("https://") else prefix + self.logo


def branding_of(merchant: str, table: Any, logo_file: str | None = None) -> Branding:
    """Merchant *merchant*'s :class:`Branding` from its configuration *table* (a
    :class:`~pasarela.config.MerchantConfig`); *logo_file*, the logo file's path as
    resolved against the configuration's folder."""
    own = f"{BRAND_PATH}/{quote(merchant, safe='')}/logo" if logo_file else None
    return Branding(merchant=merchant, name=table.display_name or merchant,
                    colour=table.colour, accent=table.accent,
                    logo=own or table.logo_url, logo_file=logo_file)


def _luminance(colour: str) -> float:
    """WCAG relative luminance of ``#rrggbb``."""
    channels = []
    for i in (1, 3, 5):
        c = int(colour[i:i + 2], 16) / 255
        channels.append(c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4)
    r, g, b = channels
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(a: str, b: str) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def readable_on(colour: str) -> str:
    """The text colour (near-black or white) that reads best on *colour* (``#rrggbb``):
    a merchant's light brand colour gets dark button text, a dark one white."""
    return _DARK if _contrast(colour, _DARK) >= _contrast(colour, _LIGHT) else _LIGHT


def stylesheet(branding: Branding) -> str:
    """The merchant's stylesheet: the page's colour variables set to its colours (the
    values are checked ``#rrggbb``, so nothing else can reach the CSS)."""
    lines = [f"/* {branding.merchant}: brand colours */", ":root {"]
    if branding.colour:
        lines += [f"  --accent: {branding.colour};",
                  f"  --on-accent: {readable_on(branding.colour)};",
                  f"  --brand: {branding.colour};"]
    if branding.accent:
        lines += [f"  --brand-accent: {branding.accent};"]
    lines.append("}")
    if branding.accent:
        lines.append(".amount-box { border-left: 4px solid var(--brand-accent); "
                     "padding-left: 0.6rem; }")
    return "\n".join(lines) + "\n"


def template_branding(find: Callable[[str], Branding | None]
                      ) -> Callable[..., dict[str, Any] | None]:
    """The Jinja global ``branding(merchant, prefix="")``: the merchant's name, colours,
    logo address and stylesheet address under *prefix*, or None (the implicit
    merchant, an unknown one)."""

    def branding(merchant: str | None, prefix: str = "") -> dict[str, Any] | None:
        found = find(merchant) if merchant else None
        if found is None:
            return None
        return {"merchant": found.merchant, "name": found.name, "colour": found.colour,
                "accent": found.accent, "logo": found.logo_src(prefix),
                "stylesheet": prefix + found.stylesheet_path}

    return branding
