"""The engine: every operation on a payment, written once as a generator of steps.

- :mod:`~pasarela.engine.flows`: steps, the sync and async drivers, provider calls
  (timeouts, retries, transport errors) and the redaction of recorded exchanges;
- :mod:`~pasarela.engine.service`: ``pay``, ``confirm``, ``sync``, ``cancel``,
  ``refund`` and the application of a provider's report;
- :mod:`~pasarela.engine.webhooks`: verify, dedupe and apply deliveries;
- :mod:`~pasarela.engine.jobs`: the expiry sweep and the resolver;
- :mod:`~pasarela.engine.outbox`: lifecycle events to the observers;
- :mod:`~pasarela.engine.worker`: the loop that runs the jobs.

Store calls happen between steps, each its own short transaction; none is held
across network I/O.
"""
