"""Serve the PagoEfectivo sandbox for benchmarks.

``python bench/pagoefectivo_server.py PORT [LATENCY_SECONDS]``
"""

from __future__ import annotations

import sys

import uvicorn
from pasarela_pagoefectivo.sandbox import create_app


if __name__ == "__main__":
    port = int(sys.argv[1])
    latency = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
    uvicorn.run(create_app(latency=latency), host="127.0.0.1", port=port, log_level="warning",
                access_log=False)
