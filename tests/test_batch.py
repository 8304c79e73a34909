"""Unit tests of logbridge.batch: a pure policy on count, bytes and age."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from logbridge.batch import Batch as _Batch
from logbridge.destinations.segment import SEGMENT_LIMITS, encode_body
from logbridge.encoding import Encoder

MAX_BATCH_BYTES = SEGMENT_LIMITS.max_request_bytes


def Batch(max_count: int, max_age: float, max_bytes: int = MAX_BATCH_BYTES) -> _Batch:
    """A batch with Segment's envelope, as the Segment destination makes them."""
    return _Batch(max_count, max_age, max_bytes, SEGMENT_LIMITS.envelope_bytes)

SENT_AT = "2026-11-22T06:30:00.123Z"
EMPTY_BODY = len(encode_body([], SENT_AT))


def item(size: int) -> bytes:
    """A serialised message of exactly ``size`` bytes (at least 2: ``{}``)."""
    assert size >= 2
    if size < 9:
        return b"{" + b" " * (size - 2) + b"}"
    return b'{"p":"' + b"x" * (size - 8) + b'"}'


class TestCount:
    """A batch is full at max_count messages."""

    def test_full_at_max_count(self):
        """The batch is full exactly when it holds max_count messages."""
        batch = Batch(max_count=3, max_age=5.0)
        for n in range(3):
            assert not batch.full
            batch.add(item(10), now=float(n))
        assert batch.full
        assert len(batch) == 3

    def test_max_count_one(self):
        """With max_count 1, one message fills the batch."""
        batch = Batch(max_count=1, max_age=5.0)
        batch.add(item(2), now=0.0)
        assert batch.full


class TestBytes:
    """A message that would take the body over max_bytes does not fit."""

    def test_default_limit(self):
        """The default limit is the APIs' 500 KB per request."""
        assert Batch(10, 1.0).max_bytes == MAX_BATCH_BYTES == 500_000

    def test_first_item_counts_the_envelope(self):
        """An empty batch fits an item only with room for the envelope around it."""
        batch = Batch(100, 5.0, max_bytes=EMPTY_BODY + 50)
        assert not batch.fits(item(51))
        assert not batch.fits(item(EMPTY_BODY + 50))

    def test_commas_are_counted(self):
        """Each item after the first also needs room for its comma."""
        batch = Batch(100, 5.0, max_bytes=EMPTY_BODY + 100)
        batch.add(item(50), now=0.0)
        assert not batch.fits(item(50))  # 50 + "," + 50 = 101
        assert batch.fits(item(40))

    def test_exactly_max_bytes_fits(self):
        """An item that makes the body exactly max_bytes long fits (only going over does not)."""
        batch = Batch(100, 5.0, max_bytes=EMPTY_BODY + 100)
        assert batch.fits(item(100))
        batch.add(item(49), now=0.0)
        assert batch.fits(item(50))  # 49 + "," + 50 = 100

    @settings(max_examples=200, deadline=None, database=None)
    @given(
        sizes=st.lists(st.integers(min_value=2, max_value=400), min_size=1, max_size=60),
        room=st.integers(min_value=0, max_value=1500),
        max_count=st.integers(min_value=1, max_value=20),
    )
    def test_body_never_exceeds_max_bytes(self, sizes: list[int], room: int, max_count: int):
        """Sending when full or when the next item does not fit, no body exceeds max_bytes."""
        max_bytes = EMPTY_BODY + room
        batch = Batch(max_count, 5.0, max_bytes=max_bytes)
        bodies: list[bytes] = []
        for size in sizes:
            candidate = item(size)
            if not batch.fits(candidate):
                if batch.items:
                    bodies.append(encode_body(batch.take(), SENT_AT))
                if not batch.fits(candidate):
                    continue  # too big even alone: the caller drops it
            assert len(encode_body([*batch.items, candidate], SENT_AT)) <= max_bytes
            batch.add(candidate, now=0.0)
            if batch.full:
                bodies.append(encode_body(batch.take(), SENT_AT))
        if batch.items:
            bodies.append(encode_body(batch.take(), SENT_AT))
        for body in bodies:
            assert len(body) <= max_bytes
            assert 1 <= len(json.loads(body)["batch"]) <= max_count


class TestAge:
    """A batch is due max_age seconds after its first message."""

    def test_empty_is_never_due(self):
        """An empty batch has no due time."""
        assert Batch(10, 5.0).due_at() is None

    def test_due_after_first_add(self):
        """The due time is the first message's time plus max_age; later adds keep it."""
        batch = Batch(10, 5.0)
        batch.add(item(10), now=100.0)
        assert batch.due_at() == 105.0
        batch.add(item(10), now=104.0)
        assert batch.due_at() == 105.0

    def test_take_resets_age(self):
        """After take the batch is not due, and the next message starts a new age."""
        batch = Batch(10, 2.5)
        batch.add(item(10), now=100.0)
        batch.take()
        assert batch.due_at() is None
        batch.add(item(10), now=200.0)
        assert batch.due_at() == 202.5


class TestTake:
    """take hands over the messages and leaves the batch empty."""

    def test_take_empties(self):
        """take returns the items in order and the batch starts over, empty and with room."""
        batch = Batch(3, 5.0, max_bytes=EMPTY_BODY + 30)
        first, second = item(10), item(12)
        batch.add(first, now=0.0)
        batch.add(second, now=0.0)
        assert not batch.fits(item(20))
        assert batch.take() == [first, second]
        assert len(batch) == 0
        assert batch.items == []
        assert not batch.full
        assert batch.fits(item(20))
        assert batch.take() == []


class TestBody:
    """The body is ``{"batch": [...], "sentAt": ...}`` built from the serialised items."""

    def test_body_parses(self):
        """The body parses as JSON with the messages under batch and the sentAt string."""
        encoder = Encoder()
        messages = [{"type": "track", "event": "É", "n": 1}, {"type": "identify"}]
        body = encode_body([encoder.encode(m) for m in messages], SENT_AT)
        assert json.loads(body) == {"batch": messages, "sentAt": SENT_AT}

    def test_empty_body(self):
        """An empty batch gives an empty array."""
        assert json.loads(encode_body([], SENT_AT)) == {"batch": [], "sentAt": SENT_AT}

    def test_body_is_compact(self):
        """The body is the items joined by commas inside the envelope, nothing more."""
        assert encode_body([b"{}", b'{"a":1}'], SENT_AT) == (
            b'{"batch":[{},{"a":1}],"sentAt":"' + SENT_AT.encode() + b'"}'
        )


class TestOutboxBounds:
    """A batch never grows past what the outbox may hold."""

    def test_capped_by_the_outbox(self):
        """With a backlog a batch fills to the smaller of the request and outbox bounds."""
        batch = _Batch.for_destination(SEGMENT_LIMITS, 100, 5.0, max_count=50, max_bytes=40_000)
        assert batch.max_count == 50
        assert batch.max_bytes == 40_000
        assert batch.ready_at == 50

    def test_request_limits_when_the_outbox_is_larger(self):
        """A large outbox leaves the destination's request limits in charge."""
        batch = _Batch.for_destination(SEGMENT_LIMITS, 100, 5.0, max_count=100_000)
        assert batch.max_count == SEGMENT_LIMITS.max_request_count
        assert batch.max_bytes == SEGMENT_LIMITS.max_request_bytes
        assert batch.ready_at == 100
