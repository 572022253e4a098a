"""A stand-in for Culqi's Custom Checkout, served by the sandbox on loopback.

``GET /checkout-js`` is a script with the same face as Culqi's
(``https://js.culqi.com/checkout-js``): ``new CulqiCheckout(publicKey, config)``,
``.open()``, ``.close()`` and the ``culqi`` callback reading ``.order`` /
``.token`` / ``.error``. ``open()`` shows ``GET /checkout/orders/{id}`` in a frame:
the order as the sandbox holds it and two buttons that "pay" it from Yape or Plin
through the sandbox's control path (``POST /_control/orders/{id}/pay``), so the
webhook and the page's polling end the payment paid, as Culqi's own checkout does.
It draws no QR: the real checkout draws Culqi's, which a sandbox cannot make.
"""

from __future__ import annotations

import html
import json
from typing import Final

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from pasarela_yape.sandbox.answers import CulqiError
from pasarela_yape.sandbox.state import CulqiSandbox


__all__ = ["SCRIPT", "checkout_routes"]

#: The stand-in script (no dependency; only CSSOM styles, so a strict page CSP holds).
SCRIPT: Final = r"""// Culqi Custom Checkout stand-in (pasarela-yape sandbox): not Culqi's code.
(function () {
  "use strict";
  var me = document.currentScript;
  var origin = new URL(me ? me.src : window.location.href).origin;
  function CulqiCheckout(publicKey, config) {
    if (!(this instanceof CulqiCheckout)) {
      throw new TypeError("CulqiCheckout must be called with new");
    }
    this.publicKey = publicKey;
    this.config = config || {};
    this.token = null;
    this.order = null;
    this.error = null;
    this.culqi = null;
    this.frame = null;
    var self = this;
    window.addEventListener("message", function (event) {
      var data = event.data;
      if (event.origin !== origin || !data || data.source !== "culqi-sandbox") { return; }
      if (data.close) { self.close(); return; }
      self.order = data.order || null;
      self.error = data.error || null;
      if (typeof self.culqi === "function") { self.culqi(); }
      if (data.order) { self.close(); }
    });
  }
  CulqiCheckout.prototype.open = function () {
    var settings = this.config.settings || {};
    if (!settings.order) {
      this.error = {object: "error", type: "parameter_error",
                    merchant_message: "settings.order es obligatorio para billeteras móviles.",
                    user_message: "No pudimos abrir el pago."};
      if (typeof this.culqi === "function") { this.culqi(); }
      return;
    }
    this.close();
    var frame = document.createElement("iframe");
    frame.id = "culqi-sandbox-checkout";
    frame.title = "Culqi checkout (sandbox)";
    frame.src = origin + "/checkout/orders/" + encodeURIComponent(settings.order) +
      "?public_key=" + encodeURIComponent(this.publicKey || "") +
      "&amount=" + encodeURIComponent(String(settings.amount || ""));
    var s = frame.style;
    s.position = "fixed"; s.left = "0"; s.top = "0"; s.width = "100%"; s.height = "100%";
    s.border = "0"; s.zIndex = "2147483647"; s.background = "rgba(0,0,0,0.4)";
    document.body.appendChild(frame);
    this.frame = frame;
  };
  CulqiCheckout.prototype.close = function () {
    if (this.frame && this.frame.parentNode) { this.frame.parentNode.removeChild(this.frame); }
    this.frame = null;
  };
  window.CulqiCheckout = CulqiCheckout;
})();
"""

_PAGE: Final = """<!doctype html>
<html lang="es"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Culqi checkout (sandbox)</title>
<style>
body {{ font: 16px system-ui, sans-serif; margin: 0; display: flex; align-items: center;
       justify-content: center; min-height: 100vh; }}
main {{ background: #fff; border-radius: 12px; padding: 24px; max-width: 360px;
       box-shadow: 0 8px 32px rgba(0,0,0,.3); }}
button {{ font-size: 16px; padding: 12px 16px; margin: 6px 6px 0 0; }}
.note {{ color: #555; font-size: 13px; }}
</style></head>
<body><main>
<h1>Billeteras móviles</h1>
<p>Orden <code id="order-id">{order}</code> · <strong id="order-amount">{amount}</strong></p>
<p>{description}</p>
<p class="note">Sandbox: Culqi's checkout draws the order's QR here. This stand-in
pays it as a wallet would (Yape or Plin).</p>
<p id="state">{state}</p>
<button type="button" id="pay-yape" data-wallet="yape"{disabled}>Pagar con Yape</button>
<button type="button" id="pay-plin" data-wallet="plin"{disabled}>Pagar con Plin</button>
<button type="button" id="close">Cerrar</button>
</main>
<script>
(function () {{
  var order = {order_json};
  function tell(message) {{
    message.source = "culqi-sandbox";
    window.parent.postMessage(message, "*");
  }}
  document.getElementById("close").addEventListener("click", function () {{
    tell({{close: true}});
  }});
  ["pay-yape", "pay-plin"].forEach(function (id) {{
    var button = document.getElementById(id);
    button.addEventListener("click", function () {{
      fetch("/_control/orders/" + encodeURIComponent(order) + "/pay", {{
        method: "POST", headers: {{"Content-Type": "application/json"}},
        body: JSON.stringify({{wallet: button.getAttribute("data-wallet")}})
      }}).then(function (r) {{ return r.json().then(function (b) {{ return [r.ok, b]; }}); }})
        .then(function (answer) {{
          document.getElementById("state").textContent = answer[0] ? "paid" : "error";
          tell(answer[0] ? {{order: answer[1].order}} : {{error: answer[1]}});
        }});
    }});
  }});
}})();
</script>
</body></html>
"""


def checkout_routes(sandbox: CulqiSandbox) -> list[Route]:
    """``GET /checkout-js`` (the script) and ``GET /checkout/orders/{id}`` (its frame)."""

    async def script(request: Request) -> Response:
        return Response(SCRIPT, media_type="application/javascript",
                        headers={"Cache-Control": "no-store"})

    async def frame(request: Request) -> Response:
        key = request.query_params.get("public_key", "")
        try:
            sandbox.check_key(f"Bearer {key}", "pk")
            order = sandbox.order(request.path_params["id"])
        except CulqiError as exc:
            return HTMLResponse(
                f"<!doctype html><p>{html.escape(str(exc.body['merchant_message']))}</p>",
                status_code=exc.status)
        amount = request.query_params.get("amount")
        if amount and amount != str(order["amount"]):
            return HTMLResponse("<!doctype html><p>settings.amount no coincide con la orden.</p>",
                                status_code=400)
        pending = order["state"] == "pending"
        body = _PAGE.format(
            order=html.escape(order["id"]),
            amount=html.escape(f"S/ {order['amount'] // 100}.{order['amount'] % 100:02d}"),
            description=html.escape(str(order.get("description") or "")),
            state=html.escape(order["state"]),
            disabled="" if pending else " disabled",
            order_json=json.dumps(order["id"]).replace("<", "\\u003c"),
        )
        return HTMLResponse(body, headers={"Cache-Control": "no-store"})

    return [Route("/checkout-js", script, methods=["GET"]),
            Route("/checkout/orders/{id}", frame, methods=["GET"])]
