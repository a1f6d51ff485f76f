"""An EventProducer no longer referenced is freed at once, not at the next garbage
collection: until then its librdkafka client stays connected and logs reconnect errors
(seen when the demo stopped a broker it had started)."""

from __future__ import annotations

import gc
import weakref

from schemas.catalogue import Catalogue
from schemas.producer import EventProducer
from schemas.settings import KafkaSettings


def test_a_dropped_producer_is_freed_without_the_cycle_collector() -> None:
    gc.disable()
    try:
        producer = EventProducer(KafkaSettings(bootstrap_servers="127.0.0.1:1"), Catalogue("t."))
        ref = weakref.ref(producer)
        del producer
        assert ref() is None, gc.get_referrers(ref())
    finally:
        gc.enable()
