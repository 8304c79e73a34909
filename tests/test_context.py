"""logbridge.bind: request-scoped identity across threads and asyncio tasks, end to end."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
from typing import Any

import pytest

import logbridge
from logbridge.collector import Collector
from tests.support import analytics_logger


def sent(collector: Collector, count: int) -> list[dict[str, Any]]:
    """The messages once ``count`` have arrived (fails the test if they do not)."""
    assert collector.wait_for(count), f"{len(collector.messages)} of {count} arrived"
    assert collector.invalid == []
    return collector.messages


class TestScope:
    """A binding holds inside its scope and is undone after it."""

    def test_context_manager_scopes_the_binding(self, collector: Collector) -> None:
        """Events inside the with block carry the bound fields; events after it do not."""
        with analytics_logger(collector.endpoint) as (log, handler):
            with logbridge.bind(user_id="u1", plan="pro", context={"ip": "203.0.113.9"}):
                log.info("Inside")
            log.info("After", extra={"anonymous_id": "a1"})
            handler.flush()
        inside, after = sent(collector, 2)
        assert (inside["userId"], inside["properties"], inside["context"]["ip"]) == (
            "u1", {"plan": "pro"}, "203.0.113.9"
        )
        assert "userId" not in after
        assert after["properties"] == {}
        assert "ip" not in after["context"]

    def test_nested_bindings_add_and_restore(self, collector: Collector) -> None:
        """An inner binding adds keys and merges context; leaving it restores the outer."""
        with analytics_logger(collector.endpoint) as (log, handler):
            with logbridge.bind(user_id="u1", context={"ip": "203.0.113.9"}):
                with logbridge.bind(anonymous_id="a1", context={"locale": "de-DE"}):
                    log.info("Inner")
                log.info("Outer")
            handler.flush()
        inner, outer = sent(collector, 2)
        assert (inner["userId"], inner["anonymousId"]) == ("u1", "a1")
        assert (inner["context"]["ip"], inner["context"]["locale"]) == ("203.0.113.9", "de-DE")
        assert "anonymousId" not in outer
        assert "locale" not in outer["context"]

    def test_reset_twice_and_without_with(self, collector: Collector) -> None:
        """bind() without with is undone by reset(); a second reset() does nothing."""
        with analytics_logger(collector.endpoint) as (log, handler):
            binding = logbridge.bind(user_id="u1")
            log.info("Bound")
            binding.reset()
            binding.reset()
            log.info("Unbound", extra={"anonymous_id": "a1"})
            handler.flush()
        bound, unbound = sent(collector, 2)
        assert bound["userId"] == "u1"
        assert "userId" not in unbound
        assert logbridge.bound() == {}

    def test_unbind_and_clear(self, collector: Collector) -> None:
        """unbind removes named keys and clear removes all, inside the current scope."""
        with analytics_logger(collector.endpoint) as (log, handler):
            with logbridge.bind(user_id="u1", anonymous_id="a1", plan="pro"):
                logbridge.unbind("user_id", "plan")
                log.info("Unbound")
                logbridge.clear()
                log.info("Cleared", extra={"anonymous_id": "a2"})
            handler.flush()
        unbound, cleared = sent(collector, 2)
        assert ("userId" in unbound, unbound["anonymousId"], unbound["properties"]) == (
            False, "a1", {}
        )
        assert cleared["anonymousId"] == "a2"

    def test_context_none_then_a_mapping(self, collector: Collector) -> None:
        """A bound context=None is replaced by a later context mapping instead of failing."""
        with analytics_logger(collector.endpoint) as (log, handler):
            with logbridge.bind(user_id="u1", context=None), logbridge.bind(context={"a": 1}):
                log.info("Merged")
            handler.flush()
        (message,) = sent(collector, 1)
        assert message["context"]["a"] == 1

    def test_bound_is_a_read_only_snapshot(self) -> None:
        """bound() cannot be used to change the bindings behind bind's back."""
        with logbridge.bind(user_id="u1"):
            view = logbridge.bound()
            with pytest.raises(TypeError):
                view["user_id"] = "u2"  # type: ignore[index]
            assert logbridge.bound() == {"user_id": "u1"}


class TestExplicitWins:
    """Keys given on the call win over bound ones, in either spelling."""

    @pytest.mark.parametrize(
        ("bound", "explicit"),
        [("user_id", "user_id"), ("user_id", "userId"), ("userId", "user_id")],
    )
    def test_explicit_user_wins(self, collector: Collector, bound: str, explicit: str) -> None:
        """An explicit user id replaces the bound one, even spelled the other way."""
        with analytics_logger(collector.endpoint) as (log, handler):
            with logbridge.bind(**{bound: "bound"}):
                log.info("Explicit", extra={explicit: "explicit"})
            handler.flush()
            assert handler.stats()["dropped_total"] == 0
        (message,) = sent(collector, 1)
        assert message["userId"] == "explicit"

    def test_contexts_merge_with_explicit_on_top(self, collector: Collector) -> None:
        """Handler context, then bound context, then the call's context: later keys win."""
        with analytics_logger(collector.endpoint, context={"app": {"name": "shop"}, "ip": "h"}) as (
            log, handler
        ):
            with logbridge.bind(user_id="u1", context={"ip": "bound", "locale": "fr"}):
                log.info("Merged", extra={"context": {"locale": "de"}, "plan": "x"})
            handler.flush()
        (message,) = sent(collector, 1)
        assert message["context"]["app"] == {"name": "shop"}
        assert (message["context"]["ip"], message["context"]["locale"]) == ("bound", "de")

    def test_explicit_property_wins_over_bound_one(self, collector: Collector) -> None:
        """A bound non-spec key is a property; the call's own value for it wins."""
        with analytics_logger(collector.endpoint) as (log, handler):
            with logbridge.bind(user_id="u1", plan="bound", region="eu"):
                log.info("Chosen", extra={"plan": "explicit"})
            handler.flush()
        (message,) = sent(collector, 1)
        assert message["properties"] == {"plan": "explicit", "region": "eu"}


class TestThreads:
    """Each thread sees its own bindings."""

    def test_concurrent_threads_keep_their_own_user(self, collector: Collector) -> None:
        """8 threads bind 8 users and log at once: every event carries its thread's user."""
        threads, per_thread = 8, 250
        start = threading.Barrier(threads)
        with analytics_logger(collector.endpoint) as (log, handler):

            def work(index: int) -> None:
                with logbridge.bind(user_id=f"u{index}", context={"worker": index}):
                    start.wait()
                    for i in range(per_thread):
                        log.info("Load", extra={"worker": index, "i": i})

            workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            assert handler.flush(timeout=30)
        messages = sent(collector, threads * per_thread)
        assert len(messages) == threads * per_thread
        for message in messages:
            worker = message["properties"]["worker"]
            assert message["userId"] == f"u{worker}"
            assert message["context"]["worker"] == worker

    def test_new_thread_starts_unbound_unless_given_the_context(
        self, collector: Collector
    ) -> None:
        """A plain new thread has no bindings; one run in copy_context() has the caller's."""
        with analytics_logger(collector.endpoint) as (log, handler):
            with logbridge.bind(user_id="u1"):
                plain = threading.Thread(
                    target=lambda: log.info("Plain Thread", extra={"anonymous_id": "a1"})
                )
                copied = threading.Thread(
                    target=contextvars.copy_context().run,
                    args=(lambda: log.info("Copied Context"),),
                )
                for thread in (plain, copied):
                    thread.start()
                    thread.join()
            handler.flush()
        by_event = {m["event"]: m for m in sent(collector, 2)}
        assert "userId" not in by_event["Plain Thread"]
        assert by_event["Copied Context"]["userId"] == "u1"

    def test_pooled_thread_does_not_leak_a_scoped_binding(self, collector: Collector) -> None:
        """A binding made with `with` in a pool task is gone for the next task on that thread."""
        with analytics_logger(collector.endpoint) as (log, handler):

            def first() -> None:
                with logbridge.bind(user_id="u1"):
                    log.info("First Task")

            def second() -> None:
                log.info("Second Task", extra={"anonymous_id": "a2"})

            with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
                pool.submit(first).result()
                pool.submit(second).result()
            handler.flush()
        first_message, second_message = sent(collector, 2)
        assert first_message["userId"] == "u1"
        assert "userId" not in second_message

    def test_sync_mode_uses_the_callers_bindings(self, collector: Collector) -> None:
        """With sync=True the binding is read on the calling thread and delivered at once."""
        with analytics_logger(collector.endpoint, sync=True) as (log, _):
            with logbridge.bind(user_id="u-sync"):
                log.info("Synced")
            assert [m["userId"] for m in collector.messages] == ["u-sync"]


class TestAsyncio:
    """Each asyncio task sees its own bindings."""

    def test_interleaved_tasks_keep_their_own_user(self, collector: Collector) -> None:
        """100 tasks bind 100 users and interleave at every await: no event mixes them up."""
        tasks, steps = 100, 5
        with analytics_logger(collector.endpoint) as (log, handler):

            async def request(index: int) -> None:
                with logbridge.bind(user_id=f"u{index}"):
                    for step in range(steps):
                        await asyncio.sleep(0)
                        log.info("Step", extra={"task": index, "step": step})

            async def main() -> None:
                await asyncio.gather(*(request(n) for n in range(tasks)))

            asyncio.run(main())
            assert handler.flush(timeout=30)
        messages = sent(collector, tasks * steps)
        assert len(messages) == tasks * steps
        assert all(m["userId"] == f"u{m['properties']['task']}" for m in messages)
        # The tasks really interleaved: the first task's steps are not all first.
        assert [m["properties"]["task"] for m in messages[:steps]] != [0] * steps

    def test_child_task_inherits_and_does_not_leak_back(self, collector: Collector) -> None:
        """A task sees what its creator bound; what it binds stays in the task."""
        with analytics_logger(collector.endpoint) as (log, handler):

            async def child() -> None:
                logbridge.bind(anonymous_id="child-anon")
                log.info("In Child")

            async def main() -> None:
                with logbridge.bind(user_id="parent"):
                    await asyncio.create_task(child())
                    log.info("In Parent")

            asyncio.run(main())
            handler.flush()
        in_child, in_parent = sent(collector, 2)
        assert (in_child["userId"], in_child["anonymousId"]) == ("parent", "child-anon")
        assert in_parent["userId"] == "parent"
        assert "anonymousId" not in in_parent

    def test_to_thread_carries_the_binding(self, collector: Collector) -> None:
        """asyncio.to_thread copies the context: the worker thread's events carry the user."""
        with analytics_logger(collector.endpoint) as (log, handler):

            async def main() -> None:
                with logbridge.bind(user_id="u-thread"):
                    await asyncio.to_thread(log.info, "Blocking Work")

            asyncio.run(main())
            handler.flush()
        (message,) = sent(collector, 1)
        assert message["userId"] == "u-thread"

    def test_reset_from_another_task_does_nothing(self, collector: Collector) -> None:
        """Resetting a binding in a task other than its own neither raises nor unbinds."""
        with analytics_logger(collector.endpoint) as (log, handler):

            async def main() -> None:
                binding = logbridge.bind(user_id="u1")

                async def elsewhere() -> None:
                    binding.reset()

                await asyncio.create_task(elsewhere())
                log.info("Still Bound")
                binding.reset()
                log.info("Unbound", extra={"anonymous_id": "a1"})

            asyncio.run(main())
            handler.flush()
        still, unbound = sent(collector, 2)
        assert still["userId"] == "u1"
        assert "userId" not in unbound


@pytest.fixture(autouse=True)
def _no_leftover_bindings() -> Any:
    """Every test starts and ends with nothing bound in the test's own context."""
    assert logbridge.bound() == {}
    yield
    assert logbridge.bound() == {}


