"""Stand-ins the tests share."""

from __future__ import annotations

from typing import ClassVar


class FakeBar:
    """Stands in for tqdm and keeps every postfix the trainer shows."""

    postfixes: ClassVar[list[dict]] = []

    def __init__(self, *args, **kwargs):
        FakeBar.postfixes = []

    def update(self, n=1):
        pass

    def set_postfix(self, **values):
        FakeBar.postfixes.append(values)

    def close(self):
        pass
