"""The transports a liaison serves the wire over."""
