"""One way to follow ``os.fork``: hooks that hold only a weak reference to their object.

``os.register_at_fork`` keeps its callables for the life of the process; a hook that
held its handler or spool strongly would keep every one ever made alive.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable

__all__ = ["at_fork"]


def at_fork(
    owner: object,
    *,
    before: str | None = None,
    after_in_parent: str | None = None,
    after_in_child: str | None = None,
) -> None:
    """Call ``owner``'s methods of these names around every fork, while ``owner`` lives."""
    if not hasattr(os, "register_at_fork"):
        return
    ref = weakref.ref(owner)

    def hook(name: str | None) -> Callable[[], None] | None:
        if name is None:
            return None

        def call() -> None:
            target = ref()
            if target is not None:
                getattr(target, name)()

        return call

    hooks = {
        "before": hook(before),
        "after_in_parent": hook(after_in_parent),
        "after_in_child": hook(after_in_child),
    }
    os.register_at_fork(**{key: value for key, value in hooks.items() if value is not None})
