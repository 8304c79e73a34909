"""The collector's Amplitude endpoints: /2/httpapi, /batch and /usermap, as Amplitude answers."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Callable
from typing import Any

import pytest
import requests

from logbridge.collector import Collector, Faults

KEY = "amp-test-key"
TIME = 1_700_000_000_123


def event(**fields: Any) -> dict[str, Any]:
    """A valid Amplitude event, with ``fields`` over the defaults."""
    return {"event_type": "Signed Up", "user_id": "user-123", "time": TIME, **fields}


def post(
    collector: Collector,
    events: list[Any],
    *,
    path: str = "/2/httpapi",
    api_key: str | None = KEY,
    **body: Any,
) -> requests.Response:
    """POST an Amplitude request body to ``path``."""
    payload: dict[str, Any] = {"events": events, **body}
    if api_key is not None:
        payload["api_key"] = api_key
    return requests.post(collector.url + path, json=payload, timeout=5)


@pytest.fixture
def amplitude(collector_factory: Callable[..., Collector]) -> Collector:
    """A collector that checks the Amplitude API key."""
    return collector_factory(write_key=KEY)


class TestAccepted:
    """Valid requests are ingested and answered with Amplitude's success body."""

    def test_success_body(self, amplitude: Collector) -> None:
        """A 200 carries code, events_ingested, payload_size_bytes and server_upload_time."""
        response = post(amplitude, [event(), event(event_type="Paid")])
        assert response.status_code == 200
        body = response.json()
        assert body["code"] == 200
        assert body["events_ingested"] == 2
        assert body["payload_size_bytes"] == len(response.request.body or b"")
        assert body["server_upload_time"] > TIME

    def test_events_are_recorded_with_the_format(self, amplitude: Collector) -> None:
        """Ingested events are kept apart from Segment messages, the request marked amplitude."""
        post(amplitude, [event()])
        assert amplitude.amplitude_events == [event()]
        assert amplitude.messages == []
        (record,) = amplitude.requests
        assert (record.format, record.path, record.message_count) == ("amplitude", "/2/httpapi", 1)

    def test_gzip_body(self, amplitude: Collector) -> None:
        """A gzip-encoded body is decoded, as Amplitude's own SDKs send it."""
        raw = json.dumps({"api_key": KEY, "events": [event()]}).encode()
        response = requests.post(
            amplitude.url + "/2/httpapi", data=gzip.compress(raw),
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}, timeout=5,
        )
        assert response.status_code == 200
        assert amplitude.amplitude_events == [event()]

    def test_batch_path_told_from_segment_by_body(self, amplitude: Collector) -> None:
        """On /batch a body with api_key and events is Amplitude's, one with batch Segment's."""
        assert post(amplitude, [event()], path="/batch").json()["code"] == 200
        segment = {
            "type": "track", "event": "E", "userId": "u", "messageId": "m-1",
            "timestamp": "2026-11-22T06:30:00.123Z",
        }
        response = requests.post(
            amplitude.url + "/batch", json={"batch": [segment]}, auth=(KEY, ""), timeout=5
        )
        assert response.json() == {"success": True}
        assert len(amplitude.amplitude_events) == 1
        assert len(amplitude.messages) == 1
        assert [r.format for r in amplitude.requests] == ["amplitude", "segment"]

    def test_stats_count_amplitude_events_by_insert_id(self, amplitude: Collector) -> None:
        """stats() counts Amplitude events, and a resent insert_id once among the unique."""
        post(amplitude, [event(insert_id="ins-1"), event(insert_id="ins-2")])
        post(amplitude, [event(insert_id="ins-1")])
        assert amplitude.stats()["amplitude"] == {"events": 3, "unique": 2, "usermaps": 0}

    def test_echo_line(self, collector_factory: Callable[..., Collector]) -> None:
        """The echo stream gets one readable line per Amplitude event."""
        echo = io.StringIO()
        collector = collector_factory(echo=echo)
        post(collector, [event(event_properties={"plan": "pro"})])
        line = echo.getvalue()
        assert "amplitude  Signed Up  user=user-123  event_properties={plan}" in line


class TestRequestErrors:
    """A bad request or key is a 400 with Amplitude's error, and nothing is ingested."""

    def test_missing_api_key(self, amplitude: Collector) -> None:
        """Without api_key the answer names the missing field."""
        response = post(amplitude, [event()], api_key=None)
        assert response.status_code == 400
        assert response.json() == {
            "code": 400, "error": "Request missing required field", "missing_field": "api_key"
        }

    def test_wrong_api_key_is_not_echoed(self, amplitude: Collector) -> None:
        """A wrong key gets "Invalid API key: ..." (the SDK's form), without the key itself."""
        response = post(amplitude, [event()], api_key="the-wrong-secret")
        assert response.status_code == 400
        assert response.json()["error"].startswith("Invalid API key:")
        assert "the-wrong-secret" not in response.text
        assert amplitude.amplitude_events == []

    def test_missing_events(self, amplitude: Collector) -> None:
        """A body without an events list is missing a required field."""
        response = requests.post(amplitude.url + "/2/httpapi", json={"api_key": KEY}, timeout=5)
        assert response.json()["missing_field"] == "events"

    def test_invalid_json(self, amplitude: Collector) -> None:
        """A body that is not JSON gets "Invalid JSON request body"."""
        response = requests.post(amplitude.url + "/2/httpapi", data=b"{not json", timeout=5)
        assert response.status_code == 400
        assert response.json() == {"code": 400, "error": "Invalid JSON request body"}


class TestEventValidation:
    """Events are checked as Amplitude does; the answer points at the bad events by index."""

    def test_missing_event_type(self, amplitude: Collector) -> None:
        """An event without event_type is listed under events_with_missing_fields."""
        bad = event()
        del bad["event_type"]
        response = post(amplitude, [event(), bad])
        assert response.status_code == 400
        assert response.json()["events_with_missing_fields"] == {"event_type": [1]}
        assert amplitude.amplitude_events == []

    def test_event_without_any_id(self, amplitude: Collector) -> None:
        """An event with neither user_id nor device_id is missing its id."""
        response = post(amplitude, [event(user_id=None)])
        assert response.json()["events_with_missing_fields"] == {"user_id": [0]}

    def test_short_id(self, amplitude: Collector) -> None:
        """An id under 5 characters is listed under events_with_invalid_id_lengths."""
        response = post(amplitude, [event(), event(user_id="abc"), event(device_id="d1")])
        assert response.json()["events_with_invalid_id_lengths"] == {
            "user_id": [1], "device_id": [2]
        }

    def test_min_id_length_option(self, amplitude: Collector) -> None:
        """options.min_id_length lowers the minimum."""
        response = post(amplitude, [event(user_id="abc")], options={"min_id_length": 3})
        assert response.status_code == 200

    @pytest.mark.parametrize("placeholder", ["null", "anonymous", "0", "-1", "Undefined",
                                             "00000000-0000-0000-0000-000000000000"])
    def test_placeholder_ids(self, amplitude: Collector, placeholder: str) -> None:
        """Placeholder ids Amplitude refuses are invalid fields."""
        response = post(amplitude, [event(user_id=placeholder)], options={"min_id_length": 1})
        assert response.json()["events_with_invalid_fields"] == {"user_id": [0]}

    @pytest.mark.parametrize("time", ["2026-11-22T06:30:00Z", 1_700_000_000, 1.7e12, True])
    def test_time_must_be_milliseconds(self, amplitude: Collector, time: object) -> None:
        """An ISO time, seconds or a float time is an invalid field."""
        response = post(amplitude, [event(time=time)])
        assert response.json()["events_with_invalid_fields"] == {"time": [0]}

    def test_properties_must_be_objects(self, amplitude: Collector) -> None:
        """event_properties that is not an object is an invalid field."""
        response = post(amplitude, [event(event_properties=[1, 2])])
        assert response.json()["events_with_invalid_fields"] == {"event_properties": [0]}


    def test_group_identify_needs_no_user(self, amplitude: Collector) -> None:
        """A $groupidentify without user_id or device_id is ingested, as the SDK sends one."""
        group = {"event_type": "$groupidentify", "groups": {"company": "acme"},
                 "group_properties": {"$set": {"name": "Acme"}}, "time": TIME}
        assert post(amplitude, [group]).status_code == 200
        assert post(amplitude, [event(user_id=None)]).status_code == 400


class TestSizes:
    """1 MB and fewer than 2,000 events on /2/httpapi; 20 MB and 2,000 events on /batch."""

    def test_http_api_body_over_1_mb(self, amplitude: Collector) -> None:
        """A body over 1 MB on /2/httpapi gets Amplitude's 413."""
        response = post(amplitude, [event(event_properties={"blob": "x" * 1_000_000})])
        assert response.status_code == 413
        assert response.json() == {"code": 413, "error": "Payload too large"}

    def test_http_api_2000_events(self, amplitude: Collector) -> None:
        """2,000 events on /2/httpapi are too many; 1,999 pass."""
        assert post(amplitude, [event()] * 2_000).status_code == 413
        assert post(amplitude, [event()] * 1_999).status_code == 200

    def test_batch_api_takes_more(self, amplitude: Collector) -> None:
        """/batch takes 2,000 events and a body over 1 MB; 2,001 events are a 413."""
        assert post(amplitude, [event()] * 2_000, path="/batch").status_code == 200
        big = [event(event_properties={"blob": "x" * 700_000})] * 2
        assert post(amplitude, big, path="/batch").status_code == 200
        assert post(amplitude, [event()] * 2_001, path="/batch").status_code == 413


class TestFaults:
    """The collector plays Amplitude's faults with Amplitude's bodies."""

    def test_throttled_user(self, collector_factory: Callable[..., Collector]) -> None:
        """A throttled user's events are named in a 429; the next request passes."""
        collector = collector_factory(faults=Faults(throttle_ids=frozenset({"slow-user"})))
        events = [event(), event(user_id="slow-user"), event(device_id="dev-1", user_id=None)]
        response = post(collector, events)
        assert response.status_code == 429
        body = response.json()
        assert body["throttled_users"] == {"slow-user": 31}
        assert body["throttled_events"] == [1]
        assert collector.amplitude_events == []
        assert post(collector, events).status_code == 200

    def test_throttled_device(self, collector_factory: Callable[..., Collector]) -> None:
        """A throttled device id is named in throttled_devices."""
        collector = collector_factory(faults=Faults(throttle_ids=["device-9"]))
        response = post(collector, [event(user_id=None, device_id="device-9")])
        assert response.json()["throttled_devices"] == {"device-9": 31}

    def test_over_daily_quota(self, collector_factory: Callable[..., Collector]) -> None:
        """An id over the daily quota is named under exceeded_daily_quota_users, every time."""
        collector = collector_factory(faults=Faults(over_quota_ids=["spam-user"]))
        for _ in range(2):
            body = post(collector, [event(), event(user_id="spam-user")]).json()
            assert body["code"] == 429
            assert body["exceeded_daily_quota_users"] == {"spam-user": 500_001}
            assert body["throttled_events"] == [1]

    @pytest.mark.parametrize("status", [413, 500, 502, 503, 504])
    def test_status_fault(self, collector_factory: Callable[..., Collector], status: int) -> None:
        """An injected status gets an Amplitude body with that code."""
        collector = collector_factory(faults=Faults(status=status))
        response = post(collector, [event()])
        assert response.status_code == status
        assert response.json()["code"] == status
        assert collector.requests[0].fault == "status"

    def test_status_429_fault_throttles_every_event(
        self, collector_factory: Callable[..., Collector]
    ) -> None:
        """An injected 429 lists every event as throttled."""
        collector = collector_factory(faults=Faults(status=429, retry_after="7"))
        response = post(collector, [event(), event()])
        assert response.json()["throttled_events"] == [0, 1]
        assert response.headers["Retry-After"] == "7"

    def test_faults_describe_amplitude_ones(self) -> None:
        """Faults.describe() mentions throttled and over-quota ids."""
        faults = Faults(throttle_ids=["a"], throttle_count=2, over_quota_ids=["b"])
        assert faults.active
        assert faults.describe() == "throttle 1 id(s) x2, over daily quota: 1 id(s)"


class TestUserMapping:
    """/usermap takes api_key and mapping as form fields."""

    def test_mapping_recorded(self, amplitude: Collector) -> None:
        """A mapping list is recorded and counted."""
        mapping = [{"user_id": "old-user", "global_user_id": "new-user"}]
        response = requests.post(
            amplitude.url + "/usermap",
            data={"api_key": KEY, "mapping": json.dumps(mapping)}, timeout=5,
        )
        assert response.status_code == 200
        assert amplitude.usermaps == mapping
        assert amplitude.requests[0].format == "amplitude"
        assert amplitude.stats()["amplitude"]["usermaps"] == 1

    def test_mapping_in_the_query_string(self, amplitude: Collector) -> None:
        """The fields may come in the query string, as the API's documented examples send them."""
        mapping = {"user_id": "old-user", "global_user_id": "new-user"}
        response = requests.post(
            amplitude.url + "/usermap",
            params={"api_key": KEY, "mapping": json.dumps([mapping])}, timeout=5,
        )
        assert response.status_code == 200
        assert amplitude.usermaps == [mapping]

    def test_mapping_needs_both_ids(self, amplitude: Collector) -> None:
        """A mapping without global_user_id (and no unmap) is refused."""
        response = requests.post(
            amplitude.url + "/usermap",
            data={"api_key": KEY, "mapping": json.dumps({"user_id": "old-user"})}, timeout=5,
        )
        assert response.status_code == 400
        assert amplitude.usermaps == []

    def test_mapping_checks_key(self, amplitude: Collector) -> None:
        """A wrong api_key is refused on /usermap too."""
        response = requests.post(
            amplitude.url + "/usermap", data={"api_key": "nope", "mapping": "[]"}, timeout=5
        )
        assert response.json()["error"].startswith("Invalid API key:")



class TestDebugger:
    """Amplitude events reach the debugger page's event list, marked amplitude."""

    def test_ingested_events_listed(self, collector_factory: Callable[..., Collector]) -> None:
        """GET /events lists Amplitude events with their format, type and user; key redacted."""
        collector = collector_factory()  # no key configured: the body's api_key still hidden
        post(collector, [event(), event(event_type="$identify", user_properties={})])
        listed = requests.get(collector.url + "/events", timeout=5).json()["events"]
        assert [(e["format"], e["type"], e["user"]) for e in listed] == [
            ("amplitude", "identify", "user-123"), ("amplitude", "track", "user-123"),
        ]
        shown = requests.get(f"{collector.url}/requests/{listed[0]['request_id']}", timeout=5)
        assert KEY not in shown.text
        assert shown.json()["path"] == "/2/httpapi"

    def test_refused_events_listed_with_problems(self, amplitude: Collector) -> None:
        """A 400's bad events are listed as invalid, with their problems; the good ones not."""
        post(amplitude, [event(), event(time="yesterday")])
        (listed,) = requests.get(amplitude.url + "/events", timeout=5).json()["events"]
        assert listed["valid"] is False
        assert listed["message"]["time"] == "yesterday"


class TestCommandLine:
    """``logbridge collect`` plays Amplitude's faults and counts its events."""

    def test_throttle_flags_and_summary(self) -> None:
        """--throttle-id throttles that user; the summary counts the Amplitude events."""
        import os
        import signal
        import socket
        import subprocess
        import sys

        from tests.support import ROOT, wait_until

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
        proc = subprocess.Popen(
            [sys.executable, "-m", "logbridge", "collect", "--port", str(port), "--quiet",
             "--write-key", KEY, "--throttle-id", "slow-user"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT,
        )
        try:
            url = f"http://127.0.0.1:{port}/2/httpapi"

            def up() -> bool:
                try:
                    return requests.get(f"http://127.0.0.1:{port}/health", timeout=1).ok
                except requests.ConnectionError:
                    return False

            assert wait_until(up, timeout=20)
            body = {"api_key": KEY, "events": [event(user_id="slow-user"), event()]}
            first = requests.post(url, json=body, timeout=5)
            assert first.json()["throttled_users"] == {"slow-user": 31}
            assert requests.post(url, json=body, timeout=5).json()["events_ingested"] == 2
            proc.send_signal(signal.SIGINT)
            output, _ = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=10)
        assert "faults: throttle 1 id(s) x1" in output
        assert "Amplitude: http://127.0.0.1:" in output
        assert "amplitude events 2, usermaps 0" in output
        assert KEY not in output
