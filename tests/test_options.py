"""Unit tests of logbridge.options: defaults, environment fallbacks and validation."""

from __future__ import annotations

import json
import logging.config
import os
import os.path
import sys
from typing import Any

import pytest

from logbridge.errors import ConfigurationError
from logbridge.options import Options, is_loopback, plain

SEGMENT = "https://api.segment.io/v1/batch"
DREAMDATA = "https://api.dreamdata.cloud/v1/batch"
RUDDER = "https://acme.dataplane.rudderstack.com"


def options(**kwargs: Any) -> Options:
    """Options from ``kwargs`` with an empty environment unless one is given."""
    kwargs.setdefault("environ", {})
    return Options.from_kwargs(**kwargs)


def error(**kwargs: Any) -> str:
    """The message of the ConfigurationError that ``kwargs`` raise."""
    kwargs.setdefault("environ", {})
    with pytest.raises(ConfigurationError) as info:
        Options.from_kwargs(**kwargs)
    return str(info.value)


def environment() -> dict[str, str]:
    """os.environ as a dict, without the variable pytest itself updates per phase."""
    return {key: value for key, value in os.environ.items() if key != "PYTEST_CURRENT_TEST"}


@pytest.fixture(autouse=True)
def environment_untouched():
    """Every test leaves os.environ exactly as it found it."""
    before = environment()
    yield
    assert environment() == before


class TestDefaults:
    """Options with only a write key."""

    def test_defaults(self):
        """The defaults: Segment, 100 messages, 5 s, gzip, 10 retries and so on."""
        result = options(write_key="k")
        assert result.endpoint == SEGMENT
        assert result.write_key == "k"
        assert result.flush_at == 100
        assert result.flush_interval == 5.0
        assert result.max_queue_size == 100_000
        assert result.gzip is True
        assert result.timeout == 10.0
        assert result.max_retries == 10
        assert result.context == {}
        assert result.on_error is None
        assert result.on_success is None
        assert result.shutdown_timeout == 5.0
        assert result.disabled is False

    def test_sources(self):
        """Each option says where its value came from: config, environment or default."""
        result = options(flush_at=10, environ={"LOGBRIDGE_WRITE_KEY": "k"})
        assert result.sources["flush_at"] == "config"
        assert result.sources["write_key"] == "environment"
        assert result.sources["timeout"] == "default"

    def test_frozen(self):
        """Options cannot be changed after validation."""
        result = options(write_key="k")
        with pytest.raises(AttributeError):
            result.flush_at = 1  # type: ignore[misc]


class TestDestinations:
    """Where events go: a preset, a URL or an explicit endpoint."""

    @pytest.mark.parametrize(
        ("destination", "expected"),
        [
            ("segment", SEGMENT),
            ("segment-eu", "https://events.eu1.segmentapis.com/v1/batch"),
            ("dreamdata", DREAMDATA),
            ("Segment", SEGMENT),
            (" dreamdata ", DREAMDATA),
        ],
    )
    def test_presets(self, destination: str, expected: str):
        """The named services map to their batch endpoints."""
        assert options(write_key="k", destination=destination).endpoint == expected

    @pytest.mark.parametrize(
        "data_plane_url", [RUDDER, RUDDER + "/", RUDDER + "/v1/batch", RUDDER + "/v1/batch/"]
    )
    def test_rudderstack(self, data_plane_url: str):
        """RudderStack's endpoint is its data plane URL plus /v1/batch, with or without a slash."""
        result = options(write_key="k", destination="rudderstack", data_plane_url=data_plane_url)
        assert result.endpoint == RUDDER + "/v1/batch"

    def test_rudderstack_data_plane_with_path(self):
        """A data plane URL with a path keeps it before /v1/batch."""
        result = options(
            write_key="k", destination="rudderstack", data_plane_url="https://proxy.example/rs/"
        )
        assert result.endpoint == "https://proxy.example/rs/v1/batch"

    def test_full_url_destination(self):
        """A full URL as destination is the endpoint."""
        url = "https://collector.example.com/v1/batch"
        assert options(write_key="k", destination=url).endpoint == url

    @pytest.mark.parametrize("option", ["endpoint", "destination"])
    @pytest.mark.parametrize("base", ["https://events.example.com", "https://events.example.com/"])
    def test_bare_base_url(self, option: str, base: str):
        """A URL with no path gets /v1/batch."""
        result = options(write_key="k", **{option: base})
        assert result.endpoint == "https://events.example.com/v1/batch"

    def test_endpoint_path_is_kept(self):
        """An endpoint with a path is used as it is."""
        url = "https://events.example.com/custom/ingest"
        assert options(write_key="k", endpoint=url).endpoint == url

    def test_endpoint_overrides_destination(self):
        """An explicit endpoint wins over the destination."""
        url = "https://collector.example.com/v1/batch"
        result = options(write_key="k", destination="dreamdata", endpoint=url)
        assert result.endpoint == url


class TestEnvironment:
    """LOGBRIDGE_* variables fill options not given, read from ``environ``."""

    def test_write_key(self):
        """LOGBRIDGE_WRITE_KEY is the write key when none is given."""
        result = options(environ={"LOGBRIDGE_WRITE_KEY": "env-key"})
        assert result.write_key == "env-key"

    def test_explicit_write_key_wins(self):
        """A write key given explicitly beats LOGBRIDGE_WRITE_KEY."""
        result = options(write_key="arg-key", environ={"LOGBRIDGE_WRITE_KEY": "env-key"})
        assert result.write_key == "arg-key"

    def test_endpoint(self):
        """LOGBRIDGE_ENDPOINT is the endpoint when none is given."""
        env = {"LOGBRIDGE_ENDPOINT": "https://events.example.com", "LOGBRIDGE_WRITE_KEY": "k"}
        assert options(environ=env).endpoint == "https://events.example.com/v1/batch"

    def test_explicit_endpoint_wins(self):
        """An endpoint given explicitly beats LOGBRIDGE_ENDPOINT."""
        env = {"LOGBRIDGE_ENDPOINT": "https://env.example.com/v1/batch"}
        result = options(write_key="k", endpoint="https://arg.example.com/v1/batch", environ=env)
        assert result.endpoint == "https://arg.example.com/v1/batch"

    def test_explicit_destination_beats_env_endpoint(self):
        """A destination given explicitly is not overridden by LOGBRIDGE_ENDPOINT."""
        env = {"LOGBRIDGE_ENDPOINT": "https://env.example.com/v1/batch"}
        result = options(write_key="k", destination="dreamdata", environ=env)
        assert result.endpoint == DREAMDATA

    def test_destination(self):
        """LOGBRIDGE_DESTINATION picks the preset when none is given."""
        env = {"LOGBRIDGE_DESTINATION": "dreamdata", "LOGBRIDGE_WRITE_KEY": "k"}
        assert options(environ=env).endpoint == DREAMDATA

    def test_explicit_destination_wins(self):
        """A destination given explicitly beats LOGBRIDGE_DESTINATION."""
        env = {"LOGBRIDGE_DESTINATION": "dreamdata"}
        assert options(write_key="k", destination="segment", environ=env).endpoint == SEGMENT

    def test_data_plane_url(self):
        """LOGBRIDGE_DATA_PLANE_URL completes the rudderstack destination."""
        env = {
            "LOGBRIDGE_DESTINATION": "rudderstack",
            "LOGBRIDGE_DATA_PLANE_URL": RUDDER,
            "LOGBRIDGE_WRITE_KEY": "k",
        }
        assert options(environ=env).endpoint == RUDDER + "/v1/batch"

    @pytest.mark.parametrize("value", ["1", "true", "yes", "on", "TRUE"])
    def test_disabled(self, value: str):
        """LOGBRIDGE_DISABLED turns sending off, and then no write key is needed."""
        assert options(environ={"LOGBRIDGE_DISABLED": value}).disabled is True

    @pytest.mark.parametrize("value", ["0", "false", "no", "off", ""])
    def test_not_disabled(self, value: str):
        """LOGBRIDGE_DISABLED set to a false value leaves sending on."""
        env = {"LOGBRIDGE_DISABLED": value, "LOGBRIDGE_WRITE_KEY": "k"}
        assert options(environ=env).disabled is False

    def test_explicit_disabled_wins(self):
        """disabled given explicitly beats LOGBRIDGE_DISABLED."""
        env = {"LOGBRIDGE_DISABLED": "1"}
        assert options(write_key="k", disabled=False, environ=env).disabled is False

    def test_environ_is_not_modified(self):
        """The environ mapping passed in is only read."""
        env = {"LOGBRIDGE_WRITE_KEY": "k", "LOGBRIDGE_DESTINATION": "dreamdata"}
        before = dict(env)
        options(environ=env)
        assert env == before


class TestErrors:
    """Impossible values fail at once, with a message naming the option."""

    @pytest.mark.parametrize(
        ("kwargs", "option"),
        [
            ({"flush_interval": 0}, "flush_interval"),
            ({"flush_interval": -1}, "flush_interval"),
            ({"flush_interval": "0"}, "flush_interval"),
            ({"flush_interval": float("nan")}, "flush_interval"),
            ({"flush_interval": float("inf")}, "flush_interval"),
            ({"flush_interval": "soon"}, "flush_interval"),
            ({"flush_at": 0}, "flush_at"),
            ({"flush_at": -5}, "flush_at"),
            ({"flush_at": "0"}, "flush_at"),
            ({"flush_at": 2.5}, "flush_at"),
            ({"flush_at": True}, "flush_at"),
            ({"max_queue_size": 0}, "max_queue_size"),
            ({"max_retries": -1}, "max_retries"),
            ({"timeout": 0}, "timeout"),
            ({"timeout": "abc"}, "timeout"),
            ({"shutdown_timeout": -1}, "shutdown_timeout"),
            ({"gzip": "maybe"}, "gzip"),
            ({"gzip": 2}, "gzip"),
            ({"disabled": "perhaps"}, "disabled"),
            ({"context": ["a"]}, "context"),
            ({"on_error": 42}, "on_error"),
            ({"on_error": "not callable"}, "on_error"),
            ({"on_error": "logbridge_no_such_module.handler"}, "on_error"),
            ({"on_error": "json.no_such_function"}, "on_error"),
            ({"on_error": "os.sep"}, "on_error"),
            ({"on_success": 3.5}, "on_success"),
            ({"write_key": 123}, "write_key"),
        ],
    )
    def test_bad_value_names_the_option(self, kwargs: dict[str, Any], option: str):
        """Each impossible value raises a ConfigurationError whose message names the option."""
        kwargs.setdefault("write_key", "k")
        assert option in error(**kwargs)

    def test_unknown_destination(self):
        """An unknown destination names itself and the choices."""
        message = error(write_key="k", destination="mixpanel")
        assert "destination" in message
        assert "'mixpanel'" in message
        assert "segment" in message

    def test_unknown_destination_with_an_endpoint(self):
        """destination is validated even when endpoint= gives the URL."""
        message = error(write_key="k", destination="nowhere", endpoint="https://e.example/v1/batch")
        assert "'nowhere'" in message
        assert "destination" in message

    def test_unknown_option_suggests_the_right_one(self):
        """A mistyped option names the option it was probably meant to be."""
        message = error(write_key="k", flush_intervall=1)
        assert "flush_intervall" in message
        assert "did you mean flush_interval?" in message

    def test_rudderstack_without_data_plane_url(self):
        """rudderstack needs data_plane_url."""
        assert "data_plane_url" in error(write_key="k", destination="rudderstack")

    @pytest.mark.parametrize("value", ["acme.dataplane.rudderstack.com", "ftp://x.example"])
    def test_bad_data_plane_url(self, value: str):
        """A data_plane_url that is not an http(s) URL is refused."""
        message = error(write_key="k", destination="rudderstack", data_plane_url=value)
        assert "data_plane_url" in message

    @pytest.mark.parametrize(
        "value",
        [
            "not a url",
            "api.segment.io/v1/batch",
            "ftp://files.example/v1/batch",
            "https://",
            "http://[::1",
            "http://collector.example:notaport/v1/batch",
        ],
    )
    def test_bad_endpoint(self, value: str):
        """An endpoint that is not a valid http(s) URL is refused, naming the option and value."""
        message = error(write_key="k", endpoint=value)
        assert "endpoint" in message
        assert repr(value) in message

    def test_bad_env_endpoint(self):
        """A LOGBRIDGE_ENDPOINT that is not a URL is refused too."""
        assert "endpoint" in error(write_key="k", environ={"LOGBRIDGE_ENDPOINT": "nowhere"})

    @pytest.mark.parametrize("kwargs", [{}, {"destination": "dreamdata"}, {"write_key": "  "}])
    def test_write_key_required_for_remote(self, kwargs: dict[str, Any]):
        """A remote destination needs a write key, and the message says how to give one."""
        message = error(**kwargs)
        assert "write_key" in message
        assert "LOGBRIDGE_WRITE_KEY" in message

    @pytest.mark.parametrize(
        "endpoint",
        [
            "http://localhost:8080/v1/batch",
            "http://127.0.0.1:9999",
            "http://[::1]:8080/v1/batch",
        ],
    )
    def test_no_write_key_for_loopback(self, endpoint: str):
        """A loopback endpoint (the local collector) needs no write key."""
        result = options(endpoint=endpoint)
        assert result.write_key is None
        assert result.endpoint.startswith(endpoint.rstrip("/"))

    def test_no_write_key_when_disabled(self):
        """A disabled handler needs no write key."""
        result = options(disabled=True)
        assert result.disabled is True
        assert result.write_key is None


class TestConversions:
    """String values (from ini files or the environment) become numbers and booleans."""

    def test_numbers_from_strings(self):
        """Numeric strings become ints and floats."""
        result = options(
            write_key="k",
            flush_at="100",
            flush_interval="2.5",
            max_queue_size=" 50 ",
            timeout="30",
            max_retries="0",
            shutdown_timeout="0",
        )
        assert (result.flush_at, result.max_queue_size, result.max_retries) == (100, 50, 0)
        assert isinstance(result.flush_at, int)
        assert (result.flush_interval, result.timeout, result.shutdown_timeout) == (2.5, 30.0, 0.0)
        assert isinstance(result.flush_interval, float)

    def test_whole_float_is_an_int(self):
        """A whole float for a count (from JSON or YAML) is accepted as an int."""
        assert options(write_key="k", flush_at=10.0).flush_at == 10

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("true", True),
            ("True", True),
            ("yes", True),
            ("on", True),
            ("1", True),
            ("false", False),
            ("FALSE", False),
            ("no", False),
            ("off", False),
            ("0", False),
            (0, False),
            (1, True),
        ],
    )
    def test_booleans_from_strings(self, value: Any, expected: bool):
        """Boolean words and 0/1 become booleans."""
        assert options(write_key="k", gzip=value).gzip is expected

    def test_disabled_from_string(self):
        """disabled="true" disables."""
        assert options(disabled="true").disabled is True

    @pytest.mark.parametrize(
        ("path", "expected"), [("json.dumps", json.dumps), ("os.path:join", os.path.join)]
    )
    def test_dotted_path_callbacks(self, path: str, expected: Any):
        """A dotted path (or module:attribute) for on_error and on_success is imported."""
        result = options(write_key="k", on_error=path, on_success=path)
        assert result.on_error is expected
        assert result.on_success is expected

    def test_callable_callback(self):
        """A callable is kept as it is."""

        def on_error(*args: Any) -> None:
            pass

        assert options(write_key="k", on_error=on_error).on_error is on_error

    def test_context_is_copied(self):
        """The context mapping is copied into a plain dict."""
        context = {"app": {"name": "shop"}}
        result = options(write_key="k", context=context)
        assert result.context == context
        assert result.context is not context


class TestSecrets:
    """The write key never shows in a repr or an error message."""

    def test_repr_hides_write_key(self):
        """repr() and str() of Options never contain the write key."""
        result = options(write_key="sekrit-write-key-123")
        assert "sekrit-write-key-123" not in repr(result)
        assert "sekrit-write-key-123" not in str(result)
        assert "***" in repr(result)

    def test_repr_without_key(self):
        """With no write key, repr says None."""
        assert "write_key=None" in repr(options(disabled=True))

    def test_error_hides_write_key(self):
        """A ConfigurationError about another option does not repeat the write key."""
        assert "sekrit-write-key-123" not in error(write_key="sekrit-write-key-123", flush_at=0)


class TestIsLoopback:
    """is_loopback tells the local collector from remote services."""

    @pytest.mark.parametrize(
        "url",
        [
            "http://localhost:8080/v1/batch",
            "http://LOCALHOST/v1/batch",
            "http://127.0.0.1:9000",
            "http://127.1.2.3/",
            "http://[::1]:8080/v1/batch",
        ],
    )
    def test_loopback(self, url: str):
        """localhost, 127.0.0.0/8 and ::1 are loopback."""
        assert is_loopback(url)

    @pytest.mark.parametrize(
        "url",
        [
            SEGMENT,
            "http://10.0.0.1/v1/batch",
            "http://localhost.example.com/v1/batch",
            "http://127.attacker.example/v1/batch",
            "http://0.0.0.0:8080/",
            "not a url",
        ],
    )
    def test_not_loopback(self, url: str):
        """Remote hosts, including names that only look like loopback, are not."""
        assert not is_loopback(url)


class TestPlain:
    """plain turns dictConfig's converting containers into plain ones."""

    def converting_context(self) -> Any:
        """A handler's context as a real DictConfigurator hands it over."""
        configurator = logging.config.DictConfigurator(
            {
                "version": 1,
                "handlers": {
                    "analytics": {
                        "()": "logbridge.AnalyticsHandler",
                        "context": {
                            "stream": "ext://sys.stderr",
                            "app": {"name": "shop", "tags": ["a", "ext://sys.stdout"]},
                            "pair": ("x", "ext://os.sep"),
                        },
                    }
                },
            }
        )
        context = configurator.config["handlers"]["analytics"]["context"]
        assert isinstance(context, logging.config.ConvertingDict)
        return context

    def test_plain_dicts_with_ext_resolved(self):
        """ConvertingDict and ConvertingList become dict and list, ext:// values resolved."""
        result = plain(self.converting_context())
        assert type(result) is dict
        assert result["stream"] is sys.stderr
        assert type(result["app"]) is dict
        assert type(result["app"]["tags"]) is list
        assert result["app"] == {"name": "shop", "tags": ["a", sys.stdout]}
        assert result["pair"] == ["x", os.sep]

    def test_options_context_from_dictconfig(self):
        """The context option is made plain, so no converting container reaches a message."""
        result = options(write_key="k", context=self.converting_context())
        assert type(result.context) is dict
        assert type(result.context["app"]) is dict
        assert result.context["stream"] is sys.stderr

    def test_plain_values_pass_through(self):
        """Plain values come out equal, as new containers."""
        value = {"a": [1, {"b": (2, 3)}], "c": "d"}
        result = plain(value)
        assert result == {"a": [1, {"b": [2, 3]}], "c": "d"}
        assert result is not value
        assert result["a"] is not value["a"]
