"""Run `switchgear` with its collector passes over 20 ms written to stderr (fleetscale's
fleet processes, to see which stall lines up with the slow commands)."""

from __future__ import annotations

import gc
import sys
import time
from collections import Counter

SLOW_S = 0.02
_start = [0.0]


def _watch(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _start[0] = time.perf_counter()
        return
    took = time.perf_counter() - _start[0]
    if took > SLOW_S:
        live = gc.get_objects()
        most = Counter(type(o).__name__ for o in live).most_common(5)
        print(f"gcwatch {time.time():.3f} gen {info['generation']} {took * 1000:.1f} ms "
              f"collected {info['collected']} tracked {len(live)} most {most}",
              file=sys.stderr, flush=True)  # fmt: skip


if __name__ == "__main__":
    gc.callbacks.append(_watch)
    from switchgear.cli.main import main

    sys.argv[0] = "switchgear"
    main()
