// pasarela customer page: the provider's own checkout for an open_checkout payment.
// Reads the public settings from data- attributes of #checkout (no inline script);
// the page loads the provider's script before this one. Culqi's Custom Checkout:
// new CulqiCheckout(publicKey, {settings, client, options}), .open(), and its culqi
// callback reading .order / .token / .error (see the Yape adapter's README).
(function () {
  "use strict";
  var box = document.getElementById("checkout");
  if (!box) { return; }
  var button = document.getElementById("open-checkout");
  var missing = document.getElementById("checkout-missing");
  var problem = document.getElementById("checkout-error");
  var settings = {};
  try { settings = JSON.parse(box.getAttribute("data-settings") || "{}"); } catch (e) { settings = {}; }

  function unavailable() { if (missing) { missing.hidden = false; } }

  if (box.getAttribute("data-provider") !== "culqi" || !button ||
      typeof window.CulqiCheckout !== "function") {
    unavailable();
    return;
  }
  var checkout;
  try {
    checkout = new window.CulqiCheckout(settings.public_key, {
      settings: {
        title: settings.title, currency: settings.currency,
        amount: settings.amount, order: settings.order
      },
      options: {
        lang: document.documentElement.lang === "en" ? "en" : "es",
        installments: false, modal: true,
        paymentMethods: {
          tarjeta: false, yape: false, billetera: true,
          bancaMovil: false, agente: false, cuotealo: false
        }
      }
    });
  } catch (e) {
    unavailable();
    return;
  }
  checkout.culqi = function () {
    if (checkout.order) {
      if (problem) { problem.hidden = true; }
      document.dispatchEvent(new CustomEvent("pasarela:check"));
    } else if (checkout.error && problem) {
      problem.textContent = checkout.error.user_message || checkout.error.merchant_message || "";
      problem.hidden = !problem.textContent;
    }
  };
  button.hidden = false;
  button.addEventListener("click", function () { checkout.open(); });
})();
