"""The stdio transport: one peer over a pipe pair."""
