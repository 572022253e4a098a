"""``env:`` references: values read from the environment, and the secrets they bring
kept out of every message."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

import attrs

from pasarela.config.errors import join_path
from pasarela.provider import ProviderSettings


_ENV_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

#: Secrets shorter than this are not scrubbed from messages (they would mangle
#: them, and no credential is that short).
_MIN_SCRUB: Final = 4


class EnvStr(str):
    """A string read from an environment variable: never echoed in messages."""

    var: str


class EnvResolver:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.errors: list[tuple[str, str]] = []
        self.secrets: list[str] = []

    def resolve(self, value: Any, path: str) -> Any:
        if isinstance(value, str) and value.startswith("env:"):
            return self._lookup(value, path)
        if isinstance(value, Mapping):
            return {key: self.resolve(item, join_path(path, str(key)))
                    for key, item in value.items()}
        if isinstance(value, list):
            return [self.resolve(item, f"{path}[{i}]") for i, item in enumerate(value)]
        return value

    def failed(self, path: str) -> bool:
        """Whether *path* is, or lies under, a reference that could not be resolved."""
        return any(
            path == failed or path.startswith((f"{failed}.", f"{failed}["))
            for failed, _ in self.errors
        )

    def _lookup(self, reference: str, path: str) -> Any:
        var = reference[len("env:") :].strip()
        if not _ENV_NAME.match(var):
            self.errors.append((path, "'env:' must be followed by an environment variable name"))
            return reference
        value = self.env.get(var)
        if value is None:
            self.errors.append((path, f"environment variable {var} is not set"))
            return reference
        if value == "":
            self.errors.append((path, f"environment variable {var} is empty"))
            return reference
        if len(value) >= _MIN_SCRUB:
            self.secrets.append(value)
        out = EnvStr(value)
        out.var = var
        return out


def secret_values(table: Mapping[str, Any], settings_class: type[ProviderSettings]) -> list[str]:
    """Strings given for the fields *settings_class* marks secret."""
    out: list[str] = []
    for field in attrs.fields(settings_class):
        if not field.metadata.get("secret"):
            continue
        value = table.get(field.alias or field.name)
        items = value if isinstance(value, list | tuple) else [value]
        out += [v for v in items if isinstance(v, str) and len(v) >= _MIN_SCRUB]
    return out


def scrub(message: str, secrets: Sequence[str]) -> str:
    for secret in sorted(set(secrets), key=len, reverse=True):
        message = message.replace(secret, "***")
    return message
