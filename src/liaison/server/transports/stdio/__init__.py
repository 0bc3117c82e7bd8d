"""The stdio transport: one peer over a pipe pair."""

__all__: list[str] = []
