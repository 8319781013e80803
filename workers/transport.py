"""The worker's HTTP transport to Claude: several small connection pools instead of one big one.

httpcore's pool looks at every connection it holds on each request and on each response's close
(polling the idle ones' sockets to see whether they expired), so a request costs more the bigger
the pool. With 200 streams in flight through one pool of 310 connections that scanning took
~18 % of a worker's CPU. Each request goes to the pool with the fewest requests in flight.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import AsyncIterator

import httpx2

# TCP keepalive, as the SDK's own transport sets it: a stream can be quiet for a long time.
_KEEPALIVE = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, True)] + [
    (socket.IPPROTO_TCP, option, value)
    for option, value in ((getattr(socket, "TCP_KEEPINTVL", None), 60),
                          (getattr(socket, "TCP_KEEPCNT", None), 5),
                          (getattr(socket, "TCP_KEEPIDLE", None), 60))
    if option is not None
]
POOL_SIZE = 32


class PooledTransport(httpx2.AsyncBaseTransport):
    def __init__(self, max_connections: int, pool_size: int = POOL_SIZE) -> None:
        pools = max(1, -(-max_connections // pool_size))
        size = -(-max_connections // pools)
        limits = httpx2.Limits(max_connections=size, max_keepalive_connections=size)
        tls = ssl.create_default_context()  # one context: each costs ~35 ms of CPU to build
        self._pools = [httpx2.AsyncHTTPTransport(verify=tls, limits=limits,
                                                 socket_options=_KEEPALIVE)
                       for _ in range(pools)]
        self.in_flight = [0] * pools

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        index = self.in_flight.index(min(self.in_flight))
        self.in_flight[index] += 1
        try:
            response = await self._pools[index].handle_async_request(request)
        except BaseException:
            self.in_flight[index] -= 1
            raise
        assert isinstance(response.stream, httpx2.AsyncByteStream)
        response.stream = _Counted(response.stream, self.in_flight, index)
        return response

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()


class _Counted(httpx2.AsyncByteStream):
    """A response body that gives its pool's slot back when it is closed (once)."""

    def __init__(self, stream: httpx2.AsyncByteStream, in_flight: list[int], index: int) -> None:
        self._stream = stream
        self._in_flight = in_flight
        self._index: int | None = index

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        if self._index is not None:
            self._in_flight[self._index] -= 1
            self._index = None
        await self._stream.aclose()
