"""A decision whose reply is lost is made once: a connection cut after EXEC reached Redis (the
decision applied, its answer gone) makes redis-py retry the watched transaction, which saw its
own write as a conflict: a promotion was then refused as "already the champion" (its aliases
and queued announcements never reached the changelog), a rejection queued its announcement twice.

On the session's real Redis, through a proxy of the test's own that cuts one connection right
after forwarding an EXEC.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import redis
from river import linear_model

from meander.models.registry import Registry
from meander.models.signing import Signer
from meander.store import redis_store

pytestmark = pytest.mark.integration


class CutAfterExec:
    """A TCP proxy to Redis; once armed, it forwards the next EXEC and closes that connection
    without relaying the reply."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream, self.armed, self.cuts = upstream, threading.Event(), 0
        self.writers: list[asyncio.StreamWriter] = []
        self.loop = asyncio.new_event_loop()
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._relay, "127.0.0.1", 0)
        )
        self.port = self.server.sockets[0].getsockname()[1]
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    async def _relay(self, client: asyncio.StreamReader, to_client: asyncio.StreamWriter) -> None:
        server, to_server = await asyncio.open_connection(*self.upstream)
        self.writers += [to_client, to_server]
        cut = asyncio.Event()

        async def up() -> None:
            while data := await client.read(65536):
                to_server.write(data)
                await to_server.drain()
                if self.armed.is_set() and b"EXEC\r\n" in data:
                    self.armed.clear()
                    cut.set()  # nothing goes back: the reply is lost
                    await asyncio.sleep(0.2)  # Redis runs the transaction meanwhile
                    self.cuts += 1
                    break
            to_client.close()
            to_server.close()

        async def down() -> None:
            while (data := await server.read(65536)) and not cut.is_set():
                to_client.write(data)
                await to_client.drain()

        await asyncio.gather(up(), down(), return_exceptions=True)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shut(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    async def _shut(self) -> None:
        self.server.close()
        for writer in self.writers:
            writer.close()
        await asyncio.gather(*(w.wait_closed() for w in self.writers), return_exceptions=True)
        await self.server.wait_closed()


@pytest.fixture
def proxy(redis_url: str) -> Iterator[CutAfterExec]:
    parts = urlsplit(redis_url)
    cutter = CutAfterExec((parts.hostname or "127.0.0.1", parts.port or 6379))
    yield cutter
    cutter.close()


@pytest.fixture
def registry(proxy: CutAfterExec, signer: Signer) -> Iterator[Registry]:
    store = redis_store(f"redis://127.0.0.1:{proxy.port}/0", timeout=5)
    yield Registry(store, f"cut{uuid.uuid4().hex[:8]}", signer)
    store.close()


def _queued(calls: list[int | None]) -> object:
    """An ``also`` that queues a marker in the decision's transaction, as announcements are."""
    key = f"test:queued:{uuid.uuid4().hex}"

    def also(pipe: redis.client.Pipeline[bytes], previous: int | None) -> None:
        calls.append(previous)
        pipe.rpush(key, b"decided")
        pipe.expire(key, 60)

    also.key = key  # type: ignore[attr-defined]
    return also


def test_a_promotion_whose_reply_is_cut_is_made_once(
    registry: Registry, proxy: CutAfterExec
) -> None:
    first = registry.register(linear_model.LogisticRegression(), spec="lr").version
    registry.promote(first)
    second = registry.register(linear_model.LogisticRegression(), spec="lr").version
    calls: list[int | None] = []
    also = _queued(calls)
    proxy.armed.set()

    previous = registry.promote(second, reason="gate", also=also)  # type: ignore[arg-type]

    assert proxy.cuts == 1
    assert (previous, registry.champion()) == (first, second)
    assert registry.get(first).status == "retired"
    assert registry.store.llen(also.key) == 1  # type: ignore[attr-defined]


def test_a_rejection_whose_reply_is_cut_is_made_once(
    registry: Registry, proxy: CutAfterExec
) -> None:
    champion = registry.register(linear_model.LogisticRegression(), spec="lr").version
    registry.promote(champion)
    challenger = registry.register(linear_model.LogisticRegression(), spec="lr").version
    registry.add_challenger(challenger)
    also = _queued([])
    proxy.armed.set()

    registry.reject(challenger, "lost its race", also=also)  # type: ignore[arg-type]

    assert proxy.cuts == 1
    assert registry.get(challenger).status == "rejected"
    assert registry.store.llen(also.key) == 1  # type: ignore[attr-defined]
