"""What pasarela serves over HTTP: the webhook server (:mod:`~pasarela.web.app`, with
its group commit :mod:`~pasarela.web.batcher` and its :mod:`~pasarela.web.metrics`), the
customer payment page (:mod:`~pasarela.web.pay_page`), the operator console
(:mod:`~pasarela.web.admin`) and the Django integration (:mod:`~pasarela.web.django`).

Nothing in the library imports this package; only the entry points and host apps do.
"""
