"""Runs the model follower beside the worker: started and stopped with the Faust app.

The follower (:class:`~schemas.model_loader.ModelFollower`) reads ``models`` from its start
in its own thread, hands the newest valid model to the :class:`~streams.model.ModelHolder`,
then keeps following. The event agent waits for :meth:`ModelService.caught_up` before its
first event, so a worker restarted while a model exists never serves trending by mistake.

Example::

    service = ModelService(ModelFollower(kafka, catalogue, holder.swap, holder.refused))
    app.add_dependency(service)
    await service.caught_up(30)
"""

from __future__ import annotations

import asyncio
import logging

from mode import Service

from schemas.model_loader import ModelFollower

log = logging.getLogger(__name__)


class ModelService(Service):
    def __init__(self, follower: ModelFollower) -> None:
        super().__init__()
        self.follower = follower

    async def on_start(self) -> None:
        self.follower.start()

    async def on_stop(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.follower.stop)

    async def caught_up(self, timeout: float) -> bool:
        """Wait (off the event loop) until the models topic was read to its end once."""
        loop = asyncio.get_running_loop()
        done = await loop.run_in_executor(None, self.follower.wait_caught_up, timeout)
        if not done:
            log.warning("models topic not read to its end in %g s; starting anyway", timeout)
        elif self.follower.model is None:
            log.info("no model published yet: serving trending (source=trending)")
        return bool(done)
