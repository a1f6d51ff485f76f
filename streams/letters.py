"""Dead letters from inside the event loop: log where the message was, send it, wait for the ack.

The shared :class:`~schemas.dead_letters.DeadLetterWriter` is synchronous, so its flush runs
in a thread. The caller acknowledges the bad message only after :meth:`LetterBox.post`
returned: the letter is then on the broker, so nothing is lost if the worker dies. If the
broker does not take it, :class:`~schemas.producer.DeliveryError` propagates and stops the
worker (the message stays unacknowledged and is read again after the restart).

Example::

    box = LetterBox(lambda: DeadLetterWriter(kafka, catalogue))
    await box.post(letter)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from schemas.dead_letters import DeadLetterWriter
from schemas.events import DeadLetter

log = logging.getLogger(__name__)


class LetterBox:
    def __init__(self, make_writer: Callable[[], DeadLetterWriter]) -> None:
        self._make_writer = make_writer
        self._writer: DeadLetterWriter | None = None  # made on first use: bad input is rare
        self.posted = 0

    async def post(self, letter: DeadLetter) -> None:
        log.warning(
            "%s[%d]@%d refused (%s): %s; sent to the dead-letter topic",
            letter.original_topic,
            letter.partition,
            letter.offset,
            letter.reason,
            letter.detail,
        )
        loop = asyncio.get_running_loop()
        if self._writer is None:
            self._writer = await loop.run_in_executor(None, self._make_writer)
        writer = self._writer
        writer.send(letter)
        await loop.run_in_executor(None, writer.flush)
        self.posted += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
