"""A plugin with a misspelled hook name (register_provider, singular)."""

from pasarela.hookspecs import hookimpl
from pasarela.model import Method
from pasarela.provider import Provider


class MisspelledProvider(Provider):
    name = "misspelled"
    display_name = "Misspelled"
    methods = frozenset({Method.CARD})
    currencies = frozenset({"PEN"})


@hookimpl
def pasarela_register_provider(register):
    register.add(MisspelledProvider)
