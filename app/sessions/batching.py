"""Automatic pipelining: the Redis commands that concurrent requests issue within one
event-loop iteration go out as one pipeline (one write, one read, one connection).

Each request still makes one round trip per load or commit; what is shared is the client's
per-call cost, which dominates a Python client's work. Commits that must be acknowledged by
replicas share one `WAIT` at the end of their batch: `WAIT` covers every write the connection
made before it, so one wait confirms the whole batch.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis

MAX_BATCH = 128


class _Call:
    __slots__ = ("args", "future", "wait")

    def __init__(
        self, args: tuple[Any, ...], wait: tuple[int, int] | None, future: asyncio.Future[Any]
    ) -> None:
        self.args = args
        self.wait = wait  # (budget in ms, replicas) when the reply must be acknowledged
        self.future = future


class CommandBatcher:
    def __init__(self, client: Redis) -> None:
        self.client = client
        self._pending: list[_Call] = []
        self._flush_scheduled = False
        self._in_flight: set[asyncio.Task[None]] = set()  # strong references until done

    async def call(self, *args: Any, wait: tuple[int, int] | None = None) -> tuple[Any, int | None]:
        """Run one command in the next batch: (its reply, replicas that acknowledged the batch
        when `wait` = (budget ms, replicas) is given, else None). A reply that is an error
        comes back as the exception object; a connection failure is raised (every caller of
        the batch gets it and retries)."""
        loop = asyncio.get_running_loop()
        call = _Call(args, wait, loop.create_future())
        self._pending.append(call)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        result: tuple[Any, int | None] = await call.future
        return result

    def _flush(self) -> None:
        self._flush_scheduled = False
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            task = asyncio.ensure_future(self._send(batch))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    async def _send(self, batch: list[_Call]) -> None:
        live = [call for call in batch if not call.future.done()]  # cancelled: deadline passed
        if not live:
            return
        waits = [call.wait for call in live if call.wait is not None]
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for call in live:
                    pipe.execute_command(*call.args)
                if waits:  # the most replicas asked for, within the shortest budget
                    replicas = max(r for _, r in waits)
                    pipe.execute_command("WAIT", replicas, min(ms for ms, _ in waits))
                replies = await pipe.execute(raise_on_error=False)
        except BaseException as exc:  # handed to every caller of the batch
            for call in live:
                if not call.future.done():
                    call.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        acked = replies[-1] if waits else None
        if isinstance(acked, Exception):
            acked = 0
        for call, reply in zip(live, replies, strict=False):
            if not call.future.done():
                call.future.set_result((reply, acked if call.wait is not None else None))
