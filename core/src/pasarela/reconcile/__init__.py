"""Reconciliation: does what a provider says it collected match our books?

- :mod:`~pasarela.reconcile.run`: :func:`reconcile`, a run over a window, and the
  reading of its results;
- :mod:`~pasarela.reconcile.matching`: the matching engine, one chunk of lines at a time;
- :mod:`~pasarela.reconcile.vocabulary`: categories, differences, summaries;
- :mod:`~pasarela.reconcile.sources`: settlement lines from a provider's API;
- :mod:`~pasarela.reconcile.csv_import`: settlement lines from a CSV file;
- :mod:`~pasarela.reconcile.cost_model`: the total cost of acceptance (fee model, FX,
  money in transit, contract terms); :mod:`~pasarela.reconcile.cost_report` renders it,
  :mod:`~pasarela.reconcile.optimize` and :mod:`~pasarela.reconcile.profile` answer
  "which route is cheapest" and "what does a provider need to quote";
- :mod:`~pasarela.reconcile.costs`: what another routing would cost (``--what-if``).
"""

from __future__ import annotations

from pasarela.reconcile.run import (
    AMOUNT_DATE_WINDOW,
    BATCH_GC_THRESHOLD,
    CHUNK_SIZE,
    Category,
    Difference,
    Summary,
    batch_gc,
    differences,
    line_status,
    reconcile,
    run_key,
    run_totals,
)


__all__ = [
    "AMOUNT_DATE_WINDOW",
    "BATCH_GC_THRESHOLD",
    "CHUNK_SIZE",
    "Category",
    "Difference",
    "Summary",
    "batch_gc",
    "differences",
    "line_status",
    "reconcile",
    "run_key",
    "run_totals",
]
