"""The Amplitude destination: mapping, limits and every documented answer, on the collector."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import pytest

from logbridge.collector import Collector, Faults
from logbridge.destinations.amplitude import (
    BATCH_LIMITS,
    HTTP_LIMITS,
    AmplitudeDestination,
    usermap_url_for,
)
from logbridge.destinations.amplitude_events import map_message
from logbridge.destinations.http import HttpSettings
from logbridge.errors import UnsupportedEvent
from tests.amplitude_support import KEY, STAMP, STAMP_MS, encode, message
from tests.support import ROOT, analytics_logger


def destination(collector: Collector, path: str = "/2/httpapi", **kwargs: Any) -> Any:
    """An AmplitudeDestination posting to the collector."""
    kwargs.setdefault("api_key", KEY)
    return AmplitudeDestination(collector.url + path, HttpSettings(timeout=5), **kwargs)


@pytest.fixture
def amplitude(collector_factory: Callable[..., Collector]) -> Collector:
    """A collector checking the Amplitude API key."""
    return collector_factory(write_key=KEY)





class TestLimitsAndBody:
    """The limits, the body and the key's whereabouts."""

    def test_http_limits(self) -> None:
        """HTTP V2: under 1 MB, fewer than 2,000 events."""
        assert (HTTP_LIMITS.max_request_bytes, HTTP_LIMITS.max_request_count) == (1_000_000, 1_999)

    def test_batch_limits(self, amplitude: Collector) -> None:
        """The Batch API: 20 MB and 2,000 events."""
        assert (BATCH_LIMITS.max_request_bytes, BATCH_LIMITS.max_request_count) == (
            20_000_000, 2_000
        )
        assert destination(amplitude, "/batch", batch_api=True).limits.max_request_count == 2_000

    def test_envelope_counted(self, amplitude: Collector) -> None:
        """The envelope is the body around the events, key and options included."""
        dest = destination(amplitude, min_id_length=3)
        assert dest.limits.envelope_bytes == len(dest.body([]))
        assert dest.limits.max_message_bytes == 1_000_000 - len(dest.body([]))

    def test_body_joins_serialised_events(self, amplitude: Collector) -> None:
        """The body is the events' bytes as they are, with api_key and options."""
        dest = destination(amplitude, min_id_length=3)
        body = dest.body([b'{"event_type":"a"}', b'{"event_type":"b"}'])
        assert body == (
            b'{"api_key":"amp-secret-key-42","events":[{"event_type":"a"},{"event_type":"b"}],'
            b'"options":{"min_id_length":3}}'
        )
        assert b"options" not in destination(amplitude).body([])

    def test_key_not_in_repr(self, amplitude: Collector) -> None:
        """The API key is in no repr."""
        dest = destination(amplitude, usermap_url=amplitude.url + "/usermap")
        assert KEY not in repr(dest) and KEY not in repr(dest.__dict__.get("_usermap"))

    @pytest.mark.parametrize(("url", "expected"), [
        ("https://api2.amplitude.com/2/httpapi", "https://api.amplitude.com/usermap"),
        ("https://api.eu.amplitude.com/batch", "https://api.eu.amplitude.com/usermap"),
        ("http://127.0.0.1:8000/proxy/2/httpapi", "http://127.0.0.1:8000/proxy/usermap"),
    ])
    def test_usermap_url(self, url: str, expected: str) -> None:
        """The User Mapping URL is Amplitude's own, or /usermap beside a custom endpoint."""
        assert usermap_url_for(url) == expected


class TestAnswers:
    """Every answer Amplitude documents, played by the collector."""

    def test_delivered(self, amplitude: Collector) -> None:
        """A 200 delivers every event, gzipped, and the collector ingests them as sent."""
        events = map_message(message("track", plan="pro"))
        outcome = destination(amplitude).send(encode(events), timeout=5)
        assert outcome.ok and outcome.wire_bytes > 0
        assert amplitude.amplitude_events == [json.loads(e) for e in encode(events)]
        assert amplitude.requests[0].content_encoding == "gzip"

    def test_invalid_fields_refuse_those_events(self, amplitude: Collector) -> None:
        """A 400 with events_with_invalid_fields refuses those, and the rest are to be resent."""
        good = encode(map_message(message("track")))[0]
        bad = b'{"event_type":"x","user_id":"user-123","time":"yesterday"}'
        outcome = destination(amplitude).send([good, bad], timeout=5)
        assert outcome.refused == {1: "Amplitude: invalid field 'time'"}
        assert outcome.error is not None and outcome.error.retryable
        assert destination(amplitude).send([good], timeout=5).ok

    def test_missing_fields_and_id_lengths(self, amplitude: Collector) -> None:
        """Missing fields and short ids are refused each with its reason."""
        items = [b'{"user_id":"user-123"}', b'{"event_type":"x","user_id":"abc"}']
        outcome = destination(amplitude).send(items, timeout=5)
        assert outcome.refused == {
            0: "Amplitude: missing field 'event_type'", 1: "Amplitude: id too short 'user_id'",
        }

    def test_invalid_api_key(self, amplitude: Collector) -> None:
        """A wrong key fails the batch for good and says so plainly, without the key."""
        outcome = destination(amplitude, api_key="wrong-secret").send(
            encode(map_message(message("track"))), timeout=5
        )
        assert outcome.error is not None and not outcome.error.retryable
        assert str(outcome.error) == "invalid API key (HTTP 400)"
        assert "wrong-secret" not in repr(outcome)

    def test_missing_field(self, amplitude: Collector) -> None:
        """A 400 with missing_field fails the batch for good, naming the field."""
        outcome = destination(amplitude, api_key="").send(
            encode(map_message(message("track"))), timeout=5
        )
        assert outcome.error is not None and not outcome.error.retryable
        assert "missing required field 'api_key'" in str(outcome.error)

    def test_too_large_splits(self, amplitude: Collector) -> None:
        """A 413 is an error with status 413, which the sender splits."""
        big = encode(map_message(message("track", blob="x" * 1000)) * 1_100)
        outcome = destination(amplitude).send(big, timeout=5)
        assert outcome.error is not None and outcome.error.status == 413

    def test_throttled_user_deferred(self, collector_factory: Callable[..., Collector]) -> None:
        """A 429 holds the throttled user's events back 30 s; the others are resent at once."""
        collector = collector_factory(faults=Faults(throttle_ids=["slow-user"]))
        items = encode(map_message(message("track")) + map_message(
            message("track", user_id="slow-user")
        ))
        outcome = destination(collector).send(items, timeout=5)
        assert outcome.deferred == {1: 30.0}
        assert outcome.refused == {}
        assert outcome.error is not None and outcome.error.retryable
        assert destination(collector).send(items[:1], timeout=5).ok

    def test_throttled_device_found_by_id(
        self, collector_factory: Callable[..., Collector]
    ) -> None:
        """Events of a throttled device are found by their device_id."""
        collector = collector_factory(faults=Faults(throttle_ids=["device-77"]))
        items = encode(map_message(message("track", user_id=None, anonymous_id="device-77")))
        assert destination(collector).send(items, timeout=5).deferred == {0: 30.0}

    def test_daily_quota_refused(self, collector_factory: Callable[..., Collector]) -> None:
        """Events of a user over the daily quota are refused with that reason."""
        collector = collector_factory(faults=Faults(over_quota_ids=["spam-user"]))
        items = encode(map_message(message("track", user_id="spam-user")))
        outcome = destination(collector).send(items, timeout=5)
        assert outcome.refused == {0: "Amplitude: exceeded_daily_quota_users"}

    @pytest.mark.parametrize(("status", "unavailable"), [
        (500, False), (502, True), (503, True), (504, True),
    ])
    def test_server_errors_retried_with_same_insert_id(
        self, collector_factory: Callable[..., Collector], status: int, unavailable: bool
    ) -> None:
        """500/502/504 and 503 are retried; the resent events carry the same insert_id."""
        collector = collector_factory(faults=Faults(status=status))
        items = encode(map_message(message("track")))
        dest = destination(collector)
        first = dest.send(items, timeout=5)
        assert first.error is not None and first.error.retryable
        assert first.unavailable is unavailable
        assert dest.send(items, timeout=5).ok
        assert collector.amplitude_events[0]["insert_id"] == "msg-0001"


class TestUserMapping:
    """Aliases go to the User Mapping API as a form, beside the events."""

    def test_alias_and_events_in_one_batch(self, amplitude: Collector) -> None:
        """A batch of events and an alias gives one events request and one /usermap request."""
        dest = destination(amplitude, usermap_url=amplitude.url + "/usermap")
        items = encode(
            dest.map_message(message("track"))
            + dest.map_message(message("alias", previous_id="old-user"))
        )
        assert dest.send(items, timeout=5).ok
        assert amplitude.usermaps == [{"user_id": "old-user", "global_user_id": "user-123"}]
        assert len(amplitude.amplitude_events) == 1
        usermap = next(r for r in amplitude.requests if r.path == "/usermap")
        assert usermap.headers["Content-Type"] == "application/x-www-form-urlencoded"

    def test_usermap_form(self, amplitude: Collector) -> None:
        """The form has api_key, the mapping list and the options."""
        dest = destination(amplitude, usermap_url=amplitude.url + "/usermap", min_id_length=3)
        item = encode(dest.map_message(message("alias", previous_id="old")))
        form = parse_qs(dest.__dict__["_usermap"].body(item).decode())
        assert form["api_key"] == [KEY]
        assert json.loads(form["mapping"][0]) == [{"user_id": "old", "global_user_id": "user-123"}]
        assert json.loads(form["options"][0]) == {"min_id_length": 3}

    def test_refused_mapping_alone(self, collector_factory: Callable[..., Collector]) -> None:
        """A mapping the API refuses for good is refused alone; the events are delivered."""
        collector = collector_factory(write_key=KEY)
        dest = destination(collector, usermap_url=collector.url + "/nowhere")
        items = encode(
            dest.map_message(message("alias", previous_id="old-user"))
            + dest.map_message(message("track"))
        )
        outcome = dest.send(items, timeout=5)
        assert outcome.error is None
        assert list(outcome.refused) == [0]
        assert outcome.refused[0].startswith("User Mapping API: ")
        assert len(collector.amplitude_events) == 1


class TestAgainstTheSDK:
    """logbridge's events equal those of Amplitude's own SDK for the same calls."""

    def test_same_events_as_amplitude_analytics(self, amplitude: Collector) -> None:
        """track, identify, set_group and group_identify agree on every field both send."""
        from amplitude import Amplitude, BaseEvent, Config, EventOptions, Identify

        ids = {"user_id": "user-123", "device_id": "device-abc", "time": STAMP_MS}
        context = {"ip": "203.0.113.9", "app": {"version": "2.1.3"},
                   "os": {"name": "iOS", "version": "17.1"}, "locale": "en-US"}
        client = Amplitude(KEY, Config(
            server_url=amplitude.url + "/2/httpapi", flush_queue_size=100,
            flush_interval_millis=60_000,
        ))
        try:
            client.track(BaseEvent(
                event_type="Order Completed", insert_id="msg-track", **ids,
                event_properties={"revenue": 9.99, "quantity": 3, "coupon": None},
                revenue=9.99, quantity=3, ip="203.0.113.9", app_version="2.1.3",
                os_name="iOS", os_version="17.1", language="en-US",
            ))
            client.identify(Identify().set("email", "a@example.com").set("plan", "pro"),
                            EventOptions(insert_id="msg-identify", **ids))
            client.set_group("company", "acme-inc", EventOptions(insert_id="msg-group", **ids))
            client.group_identify("company", "acme-inc", Identify().set("name", "Acme"),
                                  EventOptions(insert_id="msg-group-group", **ids))
            client.flush()
            assert amplitude.wait_for_amplitude(4, timeout=10)
        finally:
            client.shutdown()
        sdk = {event["insert_id"]: event for event in amplitude.amplitude_events}
        amplitude.reset()

        common = {"user_id": "user-123", "anonymous_id": "device-abc", "timestamp": STAMP,
                  "context": context}
        with analytics_logger(amplitude.url, destination="amplitude", write_key=KEY) as (
            log, handler
        ):
            log.info("Order Completed", extra={**common, "message_id": "msg-track",
                                               "revenue": 9.99, "quantity": 3, "coupon": None})
            log.info("identify", extra={**common, "message_id": "msg-identify",
                                        "email": "a@example.com", "plan": "pro"})
            log.info("group", extra={**common, "message_id": "msg-group", "group_id": "acme-inc",
                                     "traits": {"name": "Acme"}})
            assert handler.flush(timeout=10)
        ours = {event["insert_id"]: event for event in amplitude.amplitude_events}

        assert sorted(ours) == sorted(sdk)
        for insert_id, theirs in sdk.items():
            shared = (set(theirs) & set(ours[insert_id])) - {"library"}  # each names itself
            assert len(shared) >= 5
            assert {k: ours[insert_id][k] for k in shared} == {k: theirs[k] for k in shared}


class TestLifecycle:
    """The events' and the User Mapping's connections are handled together."""

    def test_reset_after_fork_gives_new_sessions(self, amplitude: Collector) -> None:
        """After a fork both requests get new sessions and still deliver."""
        dest = destination(amplitude, usermap_url=amplitude.url + "/usermap")
        usermap = dest.__dict__["_usermap"]
        before = (dest.__dict__["_session"], usermap.__dict__["_session"])
        dest.reset_after_fork()
        after = (dest.__dict__["_session"], usermap.__dict__["_session"])
        assert before[0] is not after[0] and before[1] is not after[1]
        items = encode(dest.map_message(message("alias", previous_id="old-user")))
        assert dest.send(items, timeout=5).ok
        dest.close()



class TestThroughLogging:
    """destination="amplitude" end to end: logging calls in, Amplitude events at the collector."""

    def test_every_call(self, amplitude: Collector) -> None:
        """Each message type arrives as its Amplitude events, the alias as a User Mapping."""
        with analytics_logger(amplitude.url, destination="amplitude", write_key=KEY,
                              amplitude_usermap=True) as (log, handler):
            user = {"user_id": "user-123"}
            log.info("Signed Up", extra={**user, "plan": "pro"})
            log.info("page", extra={**user, "page_name": "Pricing"})
            log.info("screen", extra={**user, "screen_name": "Home"})
            log.info("identify", extra={**user, "email": "a@example.com"})
            log.info("group", extra={**user, "group_id": "team-9", "group_type": "team"})
            log.info("alias", extra={**user, "previous_id": "anon-4242"})
            assert handler.flush(timeout=10)
        assert [event["event_type"] for event in amplitude.amplitude_events] == [
            "Signed Up", "Viewed Pricing", "Viewed Home", "$identify", "$identify",
            "$groupidentify",
        ]
        assert amplitude.amplitude_events[-1]["groups"] == {"team": "team-9"}
        assert amplitude.usermaps == [{"user_id": "anon-4242", "global_user_id": "user-123"}]
        assert {r.path for r in amplitude.requests} == {"/2/httpapi", "/usermap"}

    def test_batch_api(self, amplitude: Collector) -> None:
        """amplitude_api="batch" posts to /batch."""
        with analytics_logger(amplitude.url, destination="amplitude", write_key=KEY,
                              amplitude_api="batch") as (log, handler):
            log.info("Signed Up", extra={"user_id": "user-123"})
            assert handler.flush(timeout=10)
        assert [(r.path, r.format) for r in amplitude.requests] == [("/batch", "amplitude")]
        assert len(amplitude.amplitude_events) == 1

    def test_eu_preset(self) -> None:
        """amplitude-eu is Amplitude's EU HTTP V2 URL, and its Batch URL with the batch API."""
        from logbridge.destinations.amplitude import PRESETS

        assert PRESETS["amplitude-eu"].url == "https://api.eu.amplitude.com/2/httpapi"
        assert PRESETS["amplitude"].url == "https://api2.amplitude.com/2/httpapi"

    def test_min_id_length(self, amplitude: Collector) -> None:
        """min_id_length lets short ids through and travels in the request's options."""
        with analytics_logger(amplitude.url, destination="amplitude", write_key=KEY,
                              min_id_length=2) as (log, handler):
            log.info("Signed Up", extra={"user_id": "u7"})
            assert handler.flush(timeout=10)
        assert amplitude.amplitude_events[0]["user_id"] == "u7"

    def test_bad_id_dropped_at_the_record(self, amplitude: Collector) -> None:
        """A placeholder id is dropped as invalid, with its reason, and nothing is sent."""
        errors: list[BaseException] = []
        with analytics_logger(amplitude.url, destination="amplitude", write_key=KEY,
                              on_error=lambda exc, messages: errors.append(exc)) as (log, handler):
            log.info("Signed Up", extra={"user_id": "null"})
            assert handler.flush(timeout=10)
            assert handler.stats()["dropped"]["invalid"] == 1  # type: ignore[index]
        assert "placeholder id that Amplitude refuses" in str(errors[0])
        assert amplitude.requests == []

    def test_alias_unsupported(self, amplitude: Collector) -> None:
        """Without amplitude_usermap an alias is dropped as unsupported and passed to on_error."""
        errors: list[BaseException] = []
        with analytics_logger(amplitude.url, destination="amplitude", write_key=KEY,
                              on_error=lambda exc, messages: errors.append(exc)) as (log, handler):
            log.info("alias", extra={"user_id": "user-123", "previous_id": "anon-4242"})
            assert handler.flush(timeout=10)
            assert handler.stats()["dropped"]["unsupported"] == 1  # type: ignore[index]
        assert isinstance(errors[0], UnsupportedEvent)
        assert amplitude.requests == []

    def test_needs_api_key(self, amplitude: Collector) -> None:
        """Without write_key the handler fails at start-up, naming the option."""
        import logbridge
        from logbridge.errors import ConfigurationError

        with pytest.raises(ConfigurationError, match="write_key is required"):
            logbridge.AnalyticsHandler(destination="amplitude", endpoint=amplitude.url)

    def test_invalid_key_said_plainly(self, amplitude: Collector) -> None:
        """A wrong API key fails the batch with "invalid API key", the key in no error."""
        errors: list[BaseException] = []
        with analytics_logger(amplitude.url, destination="amplitude", write_key="wrong-secret",
                              on_error=lambda exc, messages: errors.append(exc)) as (log, handler):
            log.info("Signed Up", extra={"user_id": "user-123"})
            handler.flush(timeout=10)
            assert handler.stats()["dropped"]["rejected"] == 1  # type: ignore[index]
        assert str(errors[0]) == "invalid API key (HTTP 400)"

    def test_too_large_is_split(self, collector_factory: Callable[..., Collector]) -> None:
        """A 413 splits the batch and every event is delivered."""
        collector = collector_factory(write_key=KEY, faults=Faults(status=413))
        with analytics_logger(collector.url, destination="amplitude", write_key=KEY,
                              flush_at=4) as (log, handler):
            for n in range(4):
                log.info("Signed Up", extra={"user_id": f"user-{n:04d}"})
            assert handler.flush(timeout=10)
        assert len(collector.amplitude_events) == 4
        assert [r.status for r in collector.requests][:1] == [413]

    def test_server_error_resent_with_same_insert_id(
        self, collector_factory: Callable[..., Collector]
    ) -> None:
        """After a 503 the event is sent again with the same insert_id, and arrives once."""
        collector = collector_factory(write_key=KEY, faults=Faults(status=503))
        with analytics_logger(collector.url, destination="amplitude", write_key=KEY) as (
            log, handler
        ):
            log.info("Signed Up", extra={"user_id": "user-123", "message_id": "msg-503"})
            assert handler.flush(timeout=10)
        assert [r.status for r in collector.requests] == [503, 200]
        assert [e["insert_id"] for e in collector.amplitude_events] == ["msg-503"]

    def test_throttled_user_waits(self, collector_factory: Callable[..., Collector]) -> None:
        """A throttled user's event waits its pause while the others are sent at once."""
        collector = collector_factory(write_key=KEY, faults=Faults(throttle_ids=["slow-user"]))
        dest = AmplitudeDestination(collector.url + "/2/httpapi", HttpSettings(), KEY,
                                    throttle_pause=0.5)
        with analytics_logger(collector.url, destination=dest, write_key=KEY, flush_at=2) as (
            log, handler
        ):
            log.info("Signed Up", extra={"user_id": "slow-user"})
            log.info("Signed Up", extra={"user_id": "fast-user"})
            assert collector.wait_for_amplitude(1, timeout=10)
            assert [e["user_id"] for e in collector.amplitude_events] == ["fast-user"]
            assert handler.flush(timeout=10)
        assert [e["user_id"] for e in collector.amplitude_events] == ["fast-user", "slow-user"]

    def test_over_quota_dropped(self, collector_factory: Callable[..., Collector]) -> None:
        """Events of a user over the daily quota are dropped with that reason; others pass."""
        collector = collector_factory(write_key=KEY, faults=Faults(over_quota_ids=["spam-user"]))
        errors: list[BaseException] = []
        with analytics_logger(collector.url, destination="amplitude", write_key=KEY, flush_at=2,
                              on_error=lambda exc, messages: errors.append(exc)) as (log, handler):
            log.info("Signed Up", extra={"user_id": "spam-user"})
            log.info("Signed Up", extra={"user_id": "good-user"})
            assert handler.flush(timeout=10)
        assert [e["user_id"] for e in collector.amplitude_events] == ["good-user"]
        assert "exceeded_daily_quota_users" in str(errors[0])


class TestExample:
    """examples/destination_amplitude.py runs against the collector."""

    @pytest.mark.parametrize(("api", "path"), [("http", "/2/httpapi"), ("batch", "/batch")])
    def test_example(self, amplitude: Collector, api: str, path: str) -> None:
        """The example delivers its five calls as Amplitude events and one User Mapping."""
        import os
        import subprocess
        import sys

        env = {k: v for k, v in os.environ.items() if not k.startswith("LOGBRIDGE_")}
        run = subprocess.run(
            [sys.executable, str(ROOT / "examples" / "destination_amplitude.py"),
             "--endpoint", amplitude.url, "--api", api],
            env={**env, "AMPLITUDE_API_KEY": KEY}, capture_output=True, text=True,
            timeout=120, check=False,
        )
        assert run.returncode == 0, run.stderr
        assert "delivered: True" in run.stdout
        assert [e["event_type"] for e in amplitude.amplitude_events] == [
            "$identify", "Order Completed", "Viewed Pricing", "$identify", "$groupidentify"
        ]
        assert amplitude.usermaps == [{"user_id": "anon-7", "global_user_id": "user-42"}]
        assert {r.path for r in amplitude.requests} == {path, "/usermap"}


class TestKeyInAnswers:
    """An answer that quotes the API key never puts it in an error."""

    @pytest.mark.parametrize("status", [400, 403, 429, 500])
    def test_key_scrubbed(self, amplitude: Collector, status: int) -> None:
        """The key in an answer's text is masked before it becomes an error."""
        text = json.dumps({"code": status, "error": f"Invalid thing for key {KEY}"})
        outcome = destination(amplitude).read(status, {}, text, 1)
        assert outcome.error is not None
        assert KEY not in str(outcome.error) and KEY not in repr(outcome)
