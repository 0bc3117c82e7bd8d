"""One liaison process: what serves the wire (see docs/design.md)."""
