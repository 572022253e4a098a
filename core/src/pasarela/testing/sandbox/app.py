"""The HTTP face of a sandbox: its API routes, the control routes, one lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from pasarela.extras import MissingExtraError


try:
    from starlette.applications import Starlette
    from starlette.routing import BaseRoute
except ModuleNotFoundError as exc:  # pip install 'pasarela[sandbox]'
    raise MissingExtraError("the sandbox toolkit", "sandbox", name=exc.name) from exc

from pasarela.testing.sandbox.base import Sandbox
from pasarela.testing.sandbox.control import ControlRoute, control_routes


__all__ = ["sandbox_app"]


def sandbox_app(sandbox: Sandbox, *, api: Sequence[BaseRoute],
                control: Sequence[ControlRoute] = ()) -> Starlette:
    """The ASGI app of *sandbox*: the shared control routes and its *control* ones
    under ``/_control``, then its *api* routes. ``app.state.sandbox`` is *sandbox*;
    ``app.state.control`` its own control routes (for the banner); the courier's
    thread stops when the app shuts down."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            sandbox.close()

    app = Starlette(routes=[*control_routes(sandbox, control), *api], lifespan=lifespan)
    app.state.sandbox = sandbox
    app.state.control = tuple(control)
    return app
