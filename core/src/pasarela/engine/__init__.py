"""The engine: every operation on a payment, written once as a generator of steps.

- :mod:`~pasarela.engine.steps`: steps and the sync and async drivers;
- :mod:`~pasarela.engine.calls`: provider calls (timeouts, recording, transport
  errors, retries);
- :mod:`~pasarela.engine.redaction`: what is kept of a recorded exchange;
- :mod:`~pasarela.engine.context`: the engine's context (store, providers, router,
  clock);
- :mod:`~pasarela.engine.transitions`: the one path to a status change (payments
  and refunds), through the lifecycle table;
- :mod:`~pasarela.engine.payments`: ``options``, ``pay``, ``confirm``, ``sync``,
  ``cancel``;
- :mod:`~pasarela.engine.refunds`: ``refund``;
- :mod:`~pasarela.engine.webhooks`: verify, dedupe and apply deliveries;
- :mod:`~pasarela.engine.jobs`: the expiry sweep and the resolver;
- :mod:`~pasarela.engine.outbox`: lifecycle events to the observers;
- :mod:`~pasarela.engine.worker`: the loop that runs the jobs.

Store calls happen between steps, each its own short transaction; none is held
across network I/O.
"""
