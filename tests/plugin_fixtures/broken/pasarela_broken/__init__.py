"""A plugin whose module fails to import."""

raise RuntimeError("pasarela_broken cannot start: libbroken is missing")
