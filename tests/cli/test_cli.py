"""The command line's parsing and start-up helpers, without starting a liaison."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator

import pytest

from liaison.cli.options import UsageError
from liaison.cli.websocket import build_parser, parse_args, settings_from_args
from liaison.core.lazy_import import imported_without
from liaison.server.settings import DEFAULT_MAX_MESSAGE_SIZE


@pytest.mark.parametrize("address", ["127.0.0.1:0", "localhost:8765", "[::1]:9000"])
def test_address_alone_skips_argparse_with_the_same_settings(address: str) -> None:
    shortcut = parse_args([address])
    assert not hasattr(shortcut, "_get_kwargs")  # not an argparse.Namespace
    full = build_parser().parse_args([address])
    assert settings_from_args(shortcut, {}) == settings_from_args(full, {})
    assert settings_from_args(shortcut, {"LIAISON_TOKEN": "t"}) == settings_from_args(
        full, {"LIAISON_TOKEN": "t"}
    )


def test_defaults() -> None:
    settings, websocket = settings_from_args(parse_args(["127.0.0.1:0"]), {})
    assert settings.max_message_size == DEFAULT_MAX_MESSAGE_SIZE
    assert websocket.handshake_timeout == 10.0
    assert websocket.allowed_origins == frozenset()
    assert settings.allowed_modules is None
    assert websocket.token is None and settings.watch_parent


def test_options_go_through_argparse() -> None:
    args = parse_args(
        ["127.0.0.1:0", "--max-message-size", "1MiB", "--allow-origin", "https://a.test",
         "--allow-module", "numpy", "--no-watch-parent", "--handshake-timeout", "2"]
    )  # fmt: skip
    settings, websocket = settings_from_args(args, {})
    assert settings.max_message_size == 2**20
    assert websocket.allowed_origins == frozenset({"https://a.test"})
    assert settings.allowed_modules == frozenset({"numpy"})
    assert not settings.watch_parent and websocket.handshake_timeout == 2.0


def test_the_shared_default_list_is_not_mutated() -> None:
    parse_args(["127.0.0.1:0", "--allow-origin", "https://a.test"])
    _, websocket = settings_from_args(parse_args(["127.0.0.1:0"]), {})
    assert websocket.allowed_origins == frozenset()


def test_bad_address_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        settings_from_args(parse_args(["127.0.0.1:99999"]), {})


def test_settings_repr_hides_the_token() -> None:
    _, websocket = settings_from_args(parse_args(["127.0.0.1:0", "--token", "s3cret-value"]), {})
    assert websocket.token == "s3cret-value"
    assert "s3cret" not in repr(websocket) and "s3cret" not in str(websocket)
    assert "token=<hidden>" in repr(websocket)


@pytest.fixture
def colorsys_unimported() -> Iterator[None]:
    """A stdlib module that nothing here imports, forgotten for the test."""
    saved = sys.modules.pop("colorsys", None)
    yield
    sys.modules.pop("colorsys", None)
    if saved is not None:
        sys.modules["colorsys"] = saved


def test_a_module_imported_without_is_not_loaded_unless_used(colorsys_unimported: None) -> None:
    with imported_without("colorsys"):
        stand_in = importlib.import_module("colorsys")
    assert "colorsys" not in sys.modules
    real = importlib.import_module("colorsys")
    assert real is not stand_in and real.hsv_to_rgb(0, 0, 1) == (1, 1, 1)


def test_a_stand_in_used_inside_the_block_loads_the_real_module(colorsys_unimported: None) -> None:
    with imported_without("colorsys"):
        stand_in = importlib.import_module("colorsys")
        assert stand_in.hsv_to_rgb(0, 0, 1) == (1, 1, 1)
        real = sys.modules["colorsys"]
    assert real is not stand_in and importlib.import_module("colorsys") is real


def test_an_imported_module_is_left_alone() -> None:
    real = sys.modules["importlib.metadata"]
    with imported_without("importlib.metadata"):
        assert importlib.import_module("importlib.metadata") is real
    assert sys.modules["importlib.metadata"] is real


def test_a_stdio_liaison_carries_no_websocket_settings() -> None:
    from liaison.cli import stdio
    from liaison.server.transports.websocket.settings import WebSocketSettings

    settings = stdio.settings_from_args(stdio.build_parser().parse_args([]), {})
    assert not set(settings._fields) & set(WebSocketSettings._fields)
