"""The start-up banner: where the sandbox is, the values to use, how to drive it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pasarela.testing.sandbox.control import ControlRoute, shared_routes


if TYPE_CHECKING:
    from pasarela.testing.sandbox.base import Sandbox


__all__ = ["banner", "toml_table"]

#: Where ``pasarela serve`` takes a provider's webhooks by default.
HOST_WEBHOOKS = "http://127.0.0.1:8000/webhooks/{name}"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # a TOML basic string


def toml_table(name: str, values: Mapping[str, Any]) -> str:
    """``[providers.NAME]`` with *values*, as ``pasarela.toml`` takes it."""
    lines = [f"[providers.{name}]"]
    lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
    return "\n".join(lines)


def banner(sandbox: Sandbox, url: str, own: tuple[ControlRoute, ...] = ()) -> str:
    """What ``pasarela sandbox NAME`` prints when it starts: the URL, the credentials
    (public test values that only the sandbox accepts), where webhooks go, the
    control routes (the shared ones and *own*), and the ``pasarela.toml`` snippet."""
    lines = [f"{sandbox.title} sandbox at {url}", ""]
    credentials = sandbox.credentials()
    if credentials:
        lines.append("Credentials (public test values; only this sandbox accepts them):")
        width = max(len(c.name) for c in credentials)
        for credential in credentials:
            note = f"  ({credential.note})" if credential.note else ""
            lines.append(f"  {credential.name:<{width}}  {credential.value}{note}")
        lines.append("")
    hook = sandbox.knobs.webhook_url
    if hook:
        lines.append(f"Webhooks go to {hook}")
    else:
        lines += ["Webhooks are recorded, not sent: start with --webhook-url "
                  f"{HOST_WEBHOOKS.format(name=sandbox.name)}",
                  '  (pasarela serve), or POST /_control/config {"webhook_url": ...}']
    lines += ["", "Control (JSON, no auth; knobs: GET /_control/config):",
              f"  {'GET':<8} /_control{'':<24} knobs, counts, faults, these routes"]
    lines += [f"  {route.line()}" for route in (*shared_routes(sandbox), *own)]
    lines += ["", "In pasarela.toml:", ""]
    lines += [f"  {line}" for line in toml_table(sandbox.name, sandbox.settings(url)).split("\n")]
    lines += ["", "Ctrl+C stops it."]
    return "\n".join(lines)
