"""From a consumed message to a :class:`~streams.signals.Signal`, or to a dead letter saying why.

Every message is decoded with the shared codec against the schemas its topic declares. A
message is refused (reason in brackets) when it does not decode (the codec's reason, e.g.
``corrupt-avro``) or when its key is not the event's ``user_id`` (``wrong-key``): per-user
state relies on all of a user's events sharing one partition, which only the key decides.

Example::

    outcome = Intake(catalogue, default_codec(), Weights()).read(
        msg.topic, msg.partition, msg.offset, msg.key, msg.value)
    if isinstance(outcome, DeadLetter):
        letters.send(outcome)
"""

from __future__ import annotations

from schemas.catalogue import Catalogue
from schemas.codec import Codec
from schemas.errors import ConfigError, SchemaError
from schemas.events import DeadLetter
from streams.signals import Signal, Weights, signal_of


class Intake:
    """Decodes messages of the catalogue's event topics."""

    def __init__(self, catalogue: Catalogue, codec: Codec, weights: Weights) -> None:
        self.catalogue, self.codec, self.weights = catalogue, codec, weights

    def read(
        self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None
    ) -> Signal | DeadLetter:
        def refuse(reason: str, detail: str) -> DeadLetter:
            return DeadLetter.for_message(topic, partition, offset, key, value, reason, detail)

        try:
            schemas = self.catalogue.by_name(topic).value_schemas
        except ConfigError as exc:
            return refuse("unknown-topic", str(exc))
        try:
            decoded = self.codec.decode_any(value, schemas)
            signal = signal_of(decoded.schema, decoded.record, self.weights)
        except SchemaError as exc:
            return refuse(exc.reason, str(exc))
        if key is None or key != signal.user_id.encode():
            shown = "none" if key is None else repr(key[:100].decode(errors="replace"))
            return refuse(
                "wrong-key",
                f"message key {shown} is not the event's user_id {signal.user_id!r}; "
                "events must be keyed by user_id",
            )
        return signal
