"""Writing a list of buffers to a stream without joining them first.

A leader's write round is a few h2 frame headers and the payloads of the entries it
replicates, as views of the batches it holds. Joining them into one `bytes` for
`send_all` copied every replicated byte once more per follower, into freshly allocated
memory whose pages the kernel then had to fault in and zero: together about a tenth of a
busy leader's CPU. On a plain TCP socket `sendmsg` hands the kernel the list as it is
(one gather write); any other stream (TLS, or the in-memory streams of tests) gets the
joined bytes, as before.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import trio

Buffer = bytes | bytearray | memoryview

IOV_MAX = os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 16
"""Buffers one `sendmsg` may take (the kernel refuses more with EMSGSIZE)."""


async def send_buffers(stream: trio.abc.SendStream, buffers: Sequence[Buffer]) -> None:
    """Write `buffers` back to back, in order, entirely; like `send_all` of their join."""
    if not isinstance(stream, trio.SocketStream) or not hasattr(stream.socket, "sendmsg"):
        await stream.send_all(b"".join(buffers))
        return
    pending = [memoryview(buffer).cast("B") for buffer in buffers if len(buffer)]
    while pending:
        sent = await stream.socket.sendmsg(pending[:IOV_MAX])
        pending = remaining_after(pending, sent)


def remaining_after(pending: list[memoryview], sent: int) -> list[memoryview]:
    """What is left of `pending` once its first `sent` bytes are written."""
    done = 0
    while done < len(pending) and sent >= len(pending[done]):
        sent -= len(pending[done])
        done += 1
    rest = pending[done:]
    if sent:
        rest[0] = rest[0][sent:]
    return rest
