"""A minimal Faust worker for the smoke test: counts messages per key in a table whose
changelog lives in Kafka, and reports each key's count on an output topic.

Run as ``python faust_counter_app.py worker`` with COUNTER_* variables naming the broker,
the app id and the topics (each test gets its own).
"""

from __future__ import annotations

import os
import sys

import faust

BROKER = os.environ["COUNTER_BROKER"]
APP_ID = os.environ["COUNTER_APP_ID"]
SOURCE = os.environ["COUNTER_SOURCE"]
OUTPUT = os.environ["COUNTER_OUTPUT"]
PARTITIONS = int(os.environ["COUNTER_PARTITIONS"])

app = faust.App(
    APP_ID,
    broker=f"kafka://{BROKER}",
    store="memory://",  # state is rebuilt from the changelog topic on every start
    topic_partitions=PARTITIONS,
    topic_replication_factor=1,
    web_enabled=False,
    datadir=os.environ["COUNTER_DATADIR"],
)
# Plain bytes on the wire: the test's producer is confluent-kafka, not Faust.
source = app.topic(SOURCE, key_serializer="raw", value_serializer="raw", partitions=PARTITIONS)
output = app.topic(OUTPUT, key_serializer="raw", value_serializer="raw", partitions=PARTITIONS)
counts = app.Table("counts", default=int, partitions=PARTITIONS)


@app.agent(source)
async def count(stream: faust.Stream) -> None:
    async for event in stream.events():
        key, op = event.key.decode(), event.value.decode()
        if op == "inc":
            counts[key] += 1
        # "probe" reports the current count without changing it.
        await output.send(key=key.encode(), value=f"{op}:{counts[key]}".encode())


if __name__ == "__main__":
    sys.argv = [sys.argv[0], "worker", "--loglevel", "warn"]
    app.main()
