"""Run `switchgear` with its collector passes written to stderr (fleetscale's fleet
processes, `FLEETSCALE_GCWATCH=1`): each pass over 0.3 ms of CPU, when and how long; a
pass over 20 ms also names the most common objects the process tracks. Summed over a
burst's seconds, the CPU its passes took (docs/performance.md, sixth session)."""

from __future__ import annotations

import gc
import sys
import time
from collections import Counter

SHOWN_S = 0.0003  # CPU a pass takes to be written
SLOW_S = 0.02  # ... and to have the tracked objects counted
_start = [0.0]


def _watch(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _start[0] = time.process_time()
        return
    took = time.process_time() - _start[0]
    if took < SHOWN_S:
        return
    line = (f"gcwatch {time.time():.3f} gen {info['generation']} {took * 1000:.2f} cpu-ms "
            f"collected {info['collected']}")  # fmt: skip
    if took > SLOW_S:
        live = gc.get_objects()
        line += (
            f" tracked {len(live)} most {Counter(type(o).__name__ for o in live).most_common(5)}"
        )
    print(line, file=sys.stderr, flush=True)


if __name__ == "__main__":
    gc.callbacks.append(_watch)
    from switchgear.cli.main import main

    sys.argv[0] = "switchgear"
    main()
