"""The ``--scheduler`` address, checked before any work, and how long to wait for a cluster.

:func:`check_address` accepts what dask.distributed connects to — ``tcp://host:port`` (also
``tls://``, ``ws://``, ``wss://``, ``ucx://``), an IPv6 host in brackets, or ``host:port``
(taken as ``tcp://``) — and refuses anything else with exit 2 and an example, instead of a
``ValueError`` from deep inside dask after the inputs were read.

:data:`DEFAULT_TIMEOUT`: seconds to wait for the scheduler to answer, for a first worker, and for
any progress while no worker is connected (``--scheduler-timeout``); a scheduler without workers,
a server that never answers, or workers that all died then end the run with a message rather
than a silent hang.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pipeline.errors import InputError

__all__ = ["DEFAULT_TIMEOUT", "SCHEMES", "check_address"]

SCHEMES = ("tcp", "tls", "ws", "wss", "ucx")
DEFAULT_TIMEOUT = 60.0
_EXAMPLE = "an address such as tcp://host:8786 (the scheduler prints it when it starts)"


def check_address(text: str) -> str:
    """The scheduler address ``text`` in the form dask connects to; InputError if it is not one."""
    raw = text.strip()
    address = raw if "://" in raw else f"tcp://{raw}"
    try:
        parts = urlsplit(address)
        port = parts.port
        host = parts.hostname
    except ValueError as exc:
        raise _bad(text, f"its port is not a number from 1 to 65535 ({exc})") from exc
    if parts.scheme not in SCHEMES:
        known = ", ".join(f"{s}://" for s in SCHEMES)
        raise _bad(text, f"'{parts.scheme}://' is not a dask protocol ({known})")
    if not host:
        raise _bad(text, "it names no host")
    if port is None or port == 0:
        raise _bad(text, "it has no port (the scheduler's default is 8786)")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise _bad(text, "it has more than protocol, host and port")
    host_text = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host_text}:{port}"


def _bad(text: str, why: str) -> InputError:
    return InputError(f"'{text}' is not a scheduler address: {why}. Give {_EXAMPLE}", "--scheduler")
