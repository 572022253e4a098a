"""A provider plugin built exactly as docs/plugin-author-guide.md says."""

from pasarela.hookspecs import hookimpl
from pasarela.model import Method
from pasarela.provider import Provider


class ThrowawayProvider(Provider):
    name = "throwaway"
    display_name = "Throwaway"
    methods = frozenset({Method.CASH})
    currencies = frozenset({"PEN"})


@hookimpl
def pasarela_register_providers(register):
    register.add(ThrowawayProvider)
