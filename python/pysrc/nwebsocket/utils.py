"""URL helper kept from the 1.0 package's public module ``nwebsocket.utils``.

The connection itself no longer uses it: the Rust core parses and checks URLs.
"""

from __future__ import annotations

from urllib.parse import urlparse

__all__ = ["uriparse"]


def uriparse(uri: str, default_port: int | None = None) -> dict[str, int | str]:
    """Splits a ``ws://`` or ``wss://`` URL into ``{"port", "path", "host"}`` as 1.0 did.

    The port defaults to ``default_port`` when given, else 443 for ``wss`` and 80 otherwise.
    """
    parts = urlparse(uri)
    host, _, port = parts.netloc.partition(":")
    if port.isdigit():
        number = int(port)
    elif default_port is not None:
        number = default_port
    else:
        number = 443 if parts.scheme == "wss" else 80
    return dict(port=number, path=parts.path, host=host)
