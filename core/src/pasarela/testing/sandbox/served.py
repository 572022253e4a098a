"""A sandbox served on loopback for a test, and the handle that drives it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from pasarela.testing.helpers import serve_app
from pasarela.testing.sandbox.base import Sandbox


__all__ = ["ServedSandbox", "serve_sandbox"]


class ServedSandbox:
    """A running sandbox: :attr:`url`, the :attr:`sandbox` itself (same process),
    and :attr:`http`, a client on its base URL for the API and ``/_control``."""

    def __init__(self, url: str, app: Any) -> None:
        self.url = url
        self.app = app
        self.sandbox: Sandbox = app.state.sandbox
        self.http = httpx.Client(base_url=url, timeout=10.0)

    def control(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """``method /_control{path}``, the answer as it comes."""
        return self.http.request(method, f"/_control{path}", **kwargs)

    def post(self, path: str, **body: Any) -> Any:
        """``POST /_control{path}`` with *body* as JSON; the JSON answer (an error
        status raises :class:`httpx.HTTPStatusError`)."""
        response = self.control("POST", path, json=body)
        response.raise_for_status()
        return response.json()

    def config(self, **knobs: Any) -> Any:
        """Set knobs through ``POST /_control/config``; every knob afterwards."""
        return self.post("/config", **knobs)

    def fault(self, operation: str, kind: str, *, times: int = 1,
              seconds: float | None = None) -> Any:
        """Queue a one-shot fault (``POST /_control/faults``)."""
        body: dict[str, Any] = {"operation": operation, "kind": kind, "times": times}
        if seconds is not None:
            body["seconds"] = seconds
        return self.post("/faults", **body)

    def webhooks(self, *, wait: bool = True) -> list[dict[str, Any]]:
        """The delivery log, after the deliveries under way (unless *wait* is False)."""
        response = self.control("GET", "/webhooks", params={"wait": "1"} if wait else None)
        response.raise_for_status()
        return list(response.json()["deliveries"])

    def settings(self) -> dict[str, Any]:
        """The provider's ``pasarela.toml`` table for this sandbox (as the banner shows)."""
        return self.sandbox.settings(self.url)

    def reset(self) -> ServedSandbox:
        """Back to the start (see :meth:`Sandbox.reset`); returns itself."""
        self.sandbox.reset()
        return self

    def close(self) -> None:
        self.http.close()


@contextmanager
def serve_sandbox(app: Any) -> Iterator[ServedSandbox]:
    """Serve a sandbox's *app* on a free loopback port for the ``with`` block."""
    with serve_app(app) as url:
        served = ServedSandbox(url, app)
        served.sandbox.url = url
        try:
            yield served
        finally:
            served.close()
