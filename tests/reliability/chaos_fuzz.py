"""A fuzzer for the event topics: hostile-but-legal events and malformed messages, by category.

Hypothesis supplies the hostile text (:func:`hostile_texts`: any Unicode but NUL and lone
surrogates, run with ``derandomize=True`` so every run sees the same strings); a seeded
``random.Random`` assembles the messages from it. Drawing whole messages through Hypothesis
cost about 15 ms each here, and its cost grew with the example count: minutes for 12,000.

A message is bad *by construction*: each category breaks the contract of the event topics
(``schemas/avro``, the value rules of ``schemas/events.py``, and what PostgreSQL can store)
in one known way, and :data:`ALLOWED_REASONS` lists the dead-letter reasons that describe
that breakage. Valid events carry hostile-but-legal ids (quotes, backslashes, COPY's
``\\N`` and ``\\.``, tabs, newlines, RTL marks, emoji, the state's ``|`` separator...).

Example::

    fuzz = Fuzzer(seed=8)
    messages = fuzz.corpus(valid=2000, bad=10000)
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from schemas.codec import MAGIC, Codec, default_codec

EVENT_SCHEMAS: Mapping[str, str] = {
    "events.view": "ViewEvent",
    "events.click": "ClickEvent",
    "events.browse": "BrowseEvent",
}
VALID = "valid"
CODEC_REASONS = frozenset(
    {
        "empty",
        "not-avro-or-json",
        "unknown-fingerprint",
        "truncated",
        "corrupt-avro",
        "invalid-json",
        "missing-field",
        "wrong-type",
        "invalid-value",
        "oversized",
    }
)
ALLOWED_REASONS: Mapping[str, frozenset[str]] = {
    "random-bytes": CODEC_REASONS,
    "wrong-fingerprint": frozenset({"unknown-fingerprint"}),
    "truncated-avro": frozenset({"truncated", "corrupt-avro"}),
    "missing-field": frozenset({"missing-field"}),
    "mistyped-field": frozenset({"wrong-type", "invalid-value"}),
    "invalid-json": frozenset({"invalid-json"}),
    "oversized": frozenset({"oversized"}),
    "hostile-id": frozenset({"invalid-value"}),
    "out-of-range": frozenset({"invalid-value"}),
}
"""What a consumer may call each category. ``processing-failed`` is in none: it means the
message got past decoding and then tripped a bug."""

BAD_SHARES: Mapping[str, int] = {
    "random-bytes": 12,
    "wrong-fingerprint": 11,
    "truncated-avro": 12,
    "missing-field": 11,
    "mistyped-field": 12,
    "invalid-json": 12,
    # Few, as each is over 64 KiB and both consumers copy it into a dead letter.
    "oversized": 4,
    "hostile-id": 14,
    "out-of-range": 12,
}
"""Percent of the bad messages per category."""

NOW_MS = 1_760_000_000_000
DAY_MS = 86_400_000
MAX_TS_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last time PostgreSQL stores
EVENT_LIMIT = 64 * 1024  # the codec's size limit for an event message
BROKER_MAX_BYTES = 2_097_152
"""``message.max.bytes`` of the broker (deploy/kafka/server.properties); event topics keep it."""
GIANT_BYTES = BROKER_MAX_BYTES - 8_192
"""The largest event-topic value the broker takes, less room for the key and batch headers."""
GIANTS = 3

HOSTILE_LEGAL = (
    "'; DROP TABLE view_events; --",
    "Robert'); DROP TABLE students;--",
    "1 OR 1=1",
    '"quoted"',
    "back\\slash",
    "\\.",  # COPY's end-of-data marker
    "\\N",  # COPY's NULL
    "tab\there",
    "new\nline\r\n",
    "%s%n%x{0}{}",
    "<script>alert(1)</script>",
    "../../etc/passwd",
    "ユーザー",
    "👩\u200d👩\u200d👧\u200d👦",
    "\u202eevil\u202c",
    "e\u0301",
    "\u2028\u2029",
    "null",
    "None",
    "-1",
    " ",
    "|",
    "a|b|",
    "\x7f\x01\x1f",
    "𝕏𝕐ℤ",
    "x\x85y",
)
"""Ids a hostile client may send that the contract accepts: each is stored verbatim and
processed like any other id."""


def hostile_texts(n: int) -> list[str]:
    """Up to ``n`` distinct short strings from Hypothesis: any code point but NUL and lone
    surrogates (what PostgreSQL text and UTF-8 can hold), deterministic across runs."""
    out: list[str] = []
    legal = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")

    @settings(
        max_examples=n,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.text(legal, min_size=1, max_size=24))
    def run(text: str) -> None:
        out.append(text)

    run()
    return list(dict.fromkeys(out))


@dataclass(frozen=True)
class Fuzzed:
    """One message to produce (``topic`` is the base name) and what it is."""

    topic: str
    key: bytes | None
    value: bytes | None
    category: str
    """:data:`VALID` or a key of :data:`ALLOWED_REASONS`."""
    record: dict[str, Any] | None = None
    """The wire record of a valid event (what the sink must store, as it is)."""
    note: str = ""
    """The variant within the category, for the report."""
    event_id: str | None = None
    """The event id the message was built around (None for random bytes): how a bad message
    a consumer took for valid is recognised in its table."""


# Avro without the value rules or the size limit: bad messages must still be encodable.
_UNLIMITED = Codec(max_bytes={name: 1 << 30 for name in EVENT_SCHEMAS.values()})
_KNOWN_FINGERPRINTS = frozenset(
    v.fingerprint
    for name in default_codec().registry.names()
    for v in default_codec().registry.versions(name)
)


def _avro(topic: str, record: Mapping[str, Any]) -> bytes:
    return _UNLIMITED.encode(EVENT_SCHEMAS[topic], record)


def _json(record: Mapping[str, Any], ascii_only: bool = True) -> bytes:
    return json.dumps(record, ensure_ascii=ascii_only, allow_nan=False).encode("utf-8")


def _iso(ms: int) -> str:
    moment = datetime.fromtimestamp(ms // 1000, UTC).replace(microsecond=(ms % 1000) * 1000)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _copy(record: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(record))
    return out


def _required_paths(topic: str) -> list[tuple[str, ...]]:
    schema = default_codec().registry.current(EVENT_SCHEMAS[topic]).source
    paths: list[tuple[str, ...]] = []
    for f in schema["fields"]:
        if "default" in f:
            continue
        paths.append((f["name"],))
        if isinstance(f["type"], dict) and f["type"].get("type") == "record":
            paths += [(f["name"], g["name"]) for g in f["type"]["fields"] if "default" not in g]
    return paths


_DELETE = object()


def _set(record: Mapping[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out = _copy(record)
    if path == ("item_ids", "0"):
        out["item_ids"] = [value, *out["item_ids"]]
        return out
    target = out
    for part in path[:-1]:
        target = target[part]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return out


_WRONG_FOR_STRING: tuple[Any, ...] = (42, 4.5, True, [], {}, None)
_WRONG_FOR_NUMBER: tuple[Any, ...] = ("abc", True, False, [1], {"n": 1}, None, "")
_WRONG_FOR_RECORD: tuple[Any, ...] = ("tv", 7, [], None, True)
_WRONG_FOR_ARRAY: tuple[Any, ...] = ("i1", 3, {"0": "i1"}, None, [1, 2], [None])
_ID_FIELDS: Mapping[str, tuple[tuple[str, ...], ...]] = {
    "events.view": (("user_id",), ("item_id",), ("context", "session_id"), ("context", "device")),
    "events.click": (("user_id",), ("item_id",), ("surface",), ("context", "locale")),
    "events.browse": (("user_id",), ("list_id",), ("item_ids", "0"), ("context", "country")),
}
_NON_EMPTY = {"user_id", "item_id", "surface", "list_id", "0"}
_OUT_OF_RANGE: Mapping[str, tuple[tuple[str, Any, str], ...]] = {
    # (field, value, how it can travel: Avro cannot hold 2**63, JSON cannot hold NaN)
    "events.view": (
        ("progress", 1.5, "both"),
        ("progress", -0.25, "both"),
        ("progress", float("nan"), "avro"),
        ("duration_ms", -1, "both"),
        ("rating", float("inf"), "avro"),
        ("rating", 1e39, "json"),
        ("ts", -1, "both"),
        ("ts", MAX_TS_MS + 1, "both"),
        ("ts", 2**62, "both"),
        ("ts", 2**63, "json"),
    ),
    "events.click": (
        ("position", -1, "both"),
        ("position", 2**31, "json"),
        ("ts", MAX_TS_MS + 1, "both"),
        ("ts", -5, "both"),
    ),
    "events.browse": (("ts", MAX_TS_MS + 1_000_000, "both"), ("ts", 2**63 - 1, "both")),
}
_INVALID_JSON = ("cut", "trailing", "single-quotes", "nan", "trailing-comma", "bad-utf8", "comment")


@dataclass
class Fuzzer:
    """Seeded messages over ``users`` x ``items`` hostile-but-legal ids."""

    seed: int = 8
    n_users: int = 100
    n_items: int = 300
    rng: random.Random = field(init=False)
    texts: list[str] = field(init=False)
    users: list[str] = field(init=False)
    items: list[str] = field(init=False)
    _built: str | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.texts = hostile_texts(1000)
        pool = list(dict.fromkeys([*HOSTILE_LEGAL, *self.texts]))
        assert len(pool) >= self.n_users + self.n_items, len(pool)
        self.rng.shuffle(pool)
        self.users = pool[: self.n_users]
        self.items = pool[self.n_users : self.n_users + self.n_items]

    # -- building blocks

    def _text(self) -> str:
        return self.rng.choice(HOSTILE_LEGAL if self.rng.random() < 0.3 else self.texts)

    def _event_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def record(self, topic: str | None = None) -> tuple[str, dict[str, Any]]:
        """(base topic, wire record) of a valid event."""
        r = self.rng
        topic = topic or r.choice(tuple(EVENT_SCHEMAS))
        record: dict[str, Any] = {
            "event_id": self._event_id(),  # noted below as the message's
            "user_id": r.choice(self.users),
            "ts": r.randint(NOW_MS - DAY_MS, NOW_MS),
            "context": {
                "session_id": self._text(),
                "device": r.choice(("tv", "phone", "web", self._text())),
                "locale": r.choice((None, self._text())),
                "country": r.choice((None, self._text())),
            },
        }
        if topic == "events.view":
            record["item_id"] = r.choice(self.items)
            record["duration_ms"] = r.randint(0, 10_000_000)
            record["progress"] = r.choice((0.0, 1.0, r.random()))
            record["rating"] = r.choice((None, float(r.randint(0, 10)) / 2))
        elif topic == "events.click":
            record["item_id"] = r.choice(self.items)
            record["surface"] = self._text()
            record["position"] = r.choice((0, r.randint(0, 50), 2**31 - 1))
        else:
            record["list_id"] = self._text()
            record["item_ids"] = r.sample(self.items, r.randint(0, 6))
        self._built = record["event_id"]
        return topic, record

    def valid(self) -> Fuzzed:
        topic, record = self.record()
        key = record["user_id"].encode()
        encoding = self.rng.choice(("avro", "json-ascii", "json-utf8", "json-iso-ts"))
        if encoding == "avro":
            value = _avro(topic, record)
        elif encoding == "json-iso-ts":
            value = _json({**record, "ts": _iso(record["ts"])}, ascii_only=False)
        else:
            value = _json(record, ascii_only=encoding == "json-ascii")
        return Fuzzed(topic, key, value, VALID, record, encoding, record["event_id"])

    def _key(self, record: Mapping[str, Any]) -> bytes | None:
        return self.rng.choice((record["user_id"].encode(), None, self.rng.randbytes(12)))

    # -- the categories; each returns (topic, key, value, note)

    def random_bytes(self) -> tuple[str, bytes | None, bytes | None, str]:
        r = self.rng
        topic = r.choice(tuple(EVENT_SCHEMAS))
        key = r.choice((None, r.randbytes(r.randint(0, 64))))
        how = r.choice(("bytes", "bytes", "null value", "avro marker + bytes", "brace + bytes"))
        body = r.randbytes(r.randint(0, 400))
        value = {"null value": None, "avro marker + bytes": MAGIC + body[:120]}.get(how, body)
        if how == "brace + bytes":
            value = b"{" + body[:120]
        return topic, key, value, how

    def wrong_fingerprint(self) -> tuple[str, bytes | None, bytes | None, str]:
        topic, record = self.record()
        good = _avro(topic, record)
        how = self.rng.choice(("unknown", "other event", "RecommendationSet", "DeadLetter"))
        if how == "unknown":
            fp = self.rng.randbytes(8)
            while fp in _KNOWN_FINGERPRINTS:
                fp = self.rng.randbytes(8)
            header = MAGIC + fp
        else:
            name = how
            if how == "other event":
                name = EVENT_SCHEMAS[self.rng.choice([t for t in EVENT_SCHEMAS if t != topic])]
            header = default_codec().registry.current(name).header
        return topic, self._key(record), header + good[10:], how

    def truncated_avro(self) -> tuple[str, bytes | None, bytes | None, str]:
        topic, record = self.record()
        good = _avro(topic, record)
        cut = self.rng.randint(1, len(good) - 1)
        note = "inside the header" if cut < 10 else "inside the body"
        return topic, record["user_id"].encode(), good[:cut], note

    def missing_field(self) -> tuple[str, bytes | None, bytes | None, str]:
        topic, record = self.record()
        path = self.rng.choice(_required_paths(topic))
        value = _json(_set(record, path, _DELETE))
        return topic, record["user_id"].encode(), value, ".".join(path)

    def mistyped_field(self) -> tuple[str, bytes | None, bytes | None, str]:
        topic, record = self.record()
        path = self.rng.choice(_required_paths(topic))
        name = path[-1]
        choices: tuple[Any, ...]
        if name == "context":
            choices = _WRONG_FOR_RECORD
        elif name == "item_ids":
            choices = _WRONG_FOR_ARRAY
        elif name in ("ts", "duration_ms", "position"):
            choices = (*_WRONG_FOR_NUMBER, 1.5)
        elif name == "progress":
            choices = _WRONG_FOR_NUMBER
        else:
            choices = _WRONG_FOR_STRING
        wrong = self.rng.choice(choices)
        value = _json(_set(record, path, wrong))
        return topic, record["user_id"].encode(), value, f"{name}={type(wrong).__name__}"

    def invalid_json(self) -> tuple[str, bytes | None, bytes | None, str]:
        topic, record = self.record()
        text = _json(record)
        how = self.rng.choice((*_INVALID_JSON, "deep"))
        if how == "cut":
            value = text[: self.rng.randint(1, len(text) - 1)]
        elif how == "trailing":
            value = text + b"}x"
        elif how == "single-quotes":
            value = text.replace(b'"', b"'")
        elif how == "nan":
            value = text[:-1] + b', "progress": NaN}'
        elif how == "trailing-comma":
            value = text[:-1] + b",}"
        elif how == "bad-utf8":
            value = text[:-1] + b', "note": "\xff\xfe"}'
        elif how == "comment":
            value = b"{/* hi */" + text[1:]
        else:  # deeper than any recursion limit, well within the size limit
            value = b'{"a":' * 3000 + b"1" + b"}" * 3000
        return topic, record["user_id"].encode(), value, how

    def oversized(self, giant: bool = False) -> tuple[str, bytes | None, bytes | None, str]:
        topic, record = self.record()
        size = self.rng.randint(EVENT_LIMIT + 1, EVENT_LIMIT + 8_000)
        where = "list_id" if topic == "events.browse" else "item_id"
        how = "giant" if giant else self.rng.choice(("json field", "avro field", "blob"))
        if how == "json field":
            value = _json({**record, where: "x" * size})
        elif how == "avro field":
            value = _avro(topic, {**record, where: "y" * size})
        elif how == "blob":
            value = self.rng.randbytes(size)
        else:
            value = self.rng.randbytes(GIANT_BYTES)
        assert len(value) > EVENT_LIMIT
        return topic, record["user_id"].encode(), value, how

    def hostile_id(self) -> tuple[str, bytes | None, bytes | None, str]:
        topic, record = self.record()
        path = self.rng.choice((("event_id",), *_ID_FIELDS[topic]))
        if path == ("event_id",):
            text = self._text()
            while not _not_a_uuid(text):
                text = self._text()
            bad, how = _set(record, path, text), "not a uuid"
        else:
            hows = ("nul", "surrogate", "empty") if path[-1] in _NON_EMPTY else ("nul", "surrogate")
            how = self.rng.choice(hows)
            text = self._text()
            wrong = {"nul": f"{text}\x00{text}", "surrogate": f"{text}\udc80", "empty": ""}[how]
            bad = _set(record, path, wrong)
        key = bad["user_id"].encode("utf-8", "surrogatepass")  # the key matches the user_id
        # A lone surrogate only exists as a JSON \u escape (ASCII JSON carries it intact).
        use_avro = how != "surrogate" and self.rng.random() < 0.5
        value = _avro(topic, bad) if use_avro else _json(bad)
        return topic, key, value, f"{'.'.join(path)}: {how} ({'avro' if use_avro else 'json'})"

    def out_of_range(self) -> tuple[str, bytes | None, bytes | None, str]:
        topic, record = self.record()
        name, wrong, travels = self.rng.choice(_OUT_OF_RANGE[topic])
        bad = {**record, name: wrong}
        use_avro = travels == "avro" or (travels == "both" and self.rng.random() < 0.5)
        value = _avro(topic, bad) if use_avro else _json(bad)
        note = f"{name}={wrong!r} ({'avro' if use_avro else 'json'})"
        return topic, record["user_id"].encode(), value, note

    def bad(self, category: str) -> Fuzzed:
        self._built = None
        topic, key, value, note = getattr(self, category.replace("-", "_"))()
        return Fuzzed(topic, key, value, category, None, note, self._built)

    def corpus(self, *, valid: int, bad: int) -> list[Fuzzed]:
        """``valid`` events and ``bad`` malformed messages (shares: :data:`BAD_SHARES`),
        interleaved at random."""
        assert sum(BAD_SHARES.values()) == 100
        counts = {c: bad * share // 100 for c, share in BAD_SHARES.items()}
        counts["hostile-id"] += bad - sum(counts.values())
        counts["oversized"] -= GIANTS
        messages = [self.valid() for _ in range(valid)]
        for category, count in counts.items():
            messages += [self.bad(category) for _ in range(count)]
        for _ in range(GIANTS):
            topic, key, value, note = self.oversized(giant=True)
            messages.append(Fuzzed(topic, key, value, "oversized", None, note, self._built))
        self.rng.shuffle(messages)
        return messages


def _not_a_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except (ValueError, AttributeError, TypeError):
        return True
    return False
