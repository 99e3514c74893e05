"""Command groups of the `podium` CLI, one module each, each with `register(subparsers)`."""

__all__: list[str] = []
