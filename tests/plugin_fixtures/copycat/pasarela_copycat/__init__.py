"""A plugin that registers a provider under a name another plugin already uses."""

from pasarela.hookspecs import hookimpl
from pasarela.model import Method
from pasarela.provider import Provider


class CopycatProvider(Provider):
    name = "throwaway"
    display_name = "Copycat"
    methods = frozenset({Method.WALLET})
    currencies = frozenset({"PEN"})


@hookimpl
def pasarela_register_providers(register):
    register.add(CopycatProvider)
