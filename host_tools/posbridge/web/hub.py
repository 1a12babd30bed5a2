"""Events to every open page. Published from any thread (the emulator's screen reader,
the link's reader, the issuer's worker); delivered on the server's event loop, each
page through its own bounded queue, so that a stalled tab is dropped rather than
holding up the board or the other tabs."""
import asyncio
import json
import logging
from typing import Optional

log = logging.getLogger("posbridge")

QUEUE_SIZE = 1000


class Hub:
    def __init__(self):
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._queues: set = set()

    def bind(self, loop: asyncio.AbstractEventLoop):
        self._loop = loop

    def publish(self, event: dict):
        """From any thread: `event` to every page open now."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        text = json.dumps(event, ensure_ascii=False)
        try:
            loop.call_soon_threadsafe(self._fan_out, text)
        except RuntimeError:           # the loop closed between the check and the call
            pass

    def _fan_out(self, text: str):
        for queue in list(self._queues):
            try:
                queue.put_nowait(text)
            except asyncio.QueueFull:
                # the page stopped reading: close it; a reload gets a fresh snapshot
                self._queues.discard(queue)
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(None)     # the page's writer ends on None
                log.warning("console: a page stopped reading; dropped it")

    def subscribe(self) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue(QUEUE_SIZE)
        self._queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue):
        self._queues.discard(queue)

    @property
    def pages(self) -> int:
        return len(self._queues)
