"""A secret that stays a string for the code that uses it and shows as ``'***'``.

:class:`Secret` is a ``str``: it signs, goes into headers and compares like the text
it holds. Only its ``repr`` is masked, so a traceback that prints local variables
(an error tracker, ``rich``'s ``show_locals``, ``traceback`` with ``capture_locals``),
a debugger's variable view or an ``attrs`` repr never shows the value. The
configuration wraps every settings field marked ``metadata={"secret": True}`` in it.
"""

from __future__ import annotations

from typing import Any


__all__ = ["Secret", "seal"]


class Secret(str):
    """A string whose ``repr`` is ``'***'``. ``str(secret)`` still gives the value."""

    __slots__ = ("var",)

    var: str | None

    def __new__(cls, value: str, var: str | None = None) -> Secret:
        out = super().__new__(cls, value)
        out.var = var if var is not None else getattr(value, "var", None)
        return out

    def __repr__(self) -> str:
        return "'***'"

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled (to a worker process, say) as a Secret again, never as plain text.
        return (Secret, (str(self), self.var))


def seal(value: Any) -> Any:
    """*value* with every string in it (a string, or a list or tuple of them) a Secret."""
    if isinstance(value, Secret) or not isinstance(value, str | list | tuple):
        return value
    if isinstance(value, str):
        return Secret(value)
    return type(value)(seal(item) for item in value)
