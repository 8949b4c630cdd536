"""Answers rendered from a device's shadow, kept until the shadow changes.

A shadow is replaced (never mutated) on every event, so the object itself is the
version: a poll that finds the same shadow as the last one gets the same bytes back
without building or encoding anything. Hot read paths (the smart plug's fetch) are polled
far more often than their devices report. (The meter's getdata reads its registers at the
instant of the request, so it keeps its own cache per shadow and second.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from switchgear.core.model import DeviceState
from switchgear.runtime import Runtime

T = TypeVar("T")


class ShadowCache(Generic[T]):
    """One rendering per device, valid while the device's shadow is the same object."""

    def __init__(self, render: Callable[[DeviceState], T]) -> None:
        self._render = render
        self._by_device: dict[int, tuple[DeviceState, T]] = {}

    def get(self, device_id: int, state: DeviceState) -> T:
        hit = self._by_device.get(device_id)
        if hit is not None and hit[0] is state:
            return hit[1]
        rendered = self._render(state)
        self._by_device[device_id] = (state, rendered)
        return rendered


def shadow_cache(rt: Runtime, name: str, render: Callable[[DeviceState], T]) -> ShadowCache[T]:
    """The runtime's cache called `name` (made on first use)."""
    cache = rt.extensions.get(name)
    if cache is None:
        cache = rt.extensions[name] = ShadowCache(render)
    assert isinstance(cache, ShadowCache)
    return cache
