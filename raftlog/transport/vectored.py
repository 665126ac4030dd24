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
    pending = _views(buffers)
    while pending:
        sent = await stream.socket.sendmsg(pending[:IOV_MAX])
        pending = remaining_after(pending, sent)


def write_without_waiting(
    stream: trio.SocketStream, buffers: Sequence[Buffer]
) -> tuple[int, list[memoryview], OSError | None]:
    """Write as much of `buffers`, in order, as the socket takes now, from any task (no
    checkpoint): (bytes written, what is left, the error that stopped it or None). A
    `BlockingIOError` only means the socket's buffer is full.

    Only for a caller that knows no other task is writing to the stream meanwhile.
    """
    pending = _views(buffers)
    written = 0
    while pending:
        try:
            sent = os.writev(stream.socket.fileno(), pending[:IOV_MAX])
        except OSError as error:
            return written, pending, error
        written += sent
        pending = remaining_after(pending, sent)
    return written, pending, None


def _views(buffers: Sequence[Buffer]) -> list[memoryview]:
    return [memoryview(buffer).cast("B") for buffer in buffers if len(buffer)]


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
