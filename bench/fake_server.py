"""Serve the fake gateway over loopback HTTP for benchmarks.

``python bench/fake_server.py PORT``
"""

from __future__ import annotations

import sys

import uvicorn

from pasarela.testing.fake import FakeGateway


if __name__ == "__main__":
    port = int(sys.argv[1])
    uvicorn.run(FakeGateway().asgi(), host="127.0.0.1", port=port, log_level="warning",
                access_log=False)
