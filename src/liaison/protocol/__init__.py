"""The wire, sans-I/O, shared by the liaison and its clients: requests, replies, binary
frames and their number lists, line framing, encoding, errors and the command table."""

__all__: list[str] = []
