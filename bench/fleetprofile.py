"""Run `switchgear` under cProfile for the phases a benchmark marks: SIGUSR1 starts a
profile, SIGUSR2 writes it to `<folder>/<name>-<k>.prof` (fleetscale's fleet processes,
to profile the FFR burst alone, not the sessions' connecting).

    python -m bench.fleetprofile <folder> <name> switchgear-arguments...
"""

from __future__ import annotations

import cProfile
import signal
import sys
from types import FrameType

_profile: list[cProfile.Profile] = []
_written = [0]
_to = sys.argv[1:3]  # folder, name


def _start(_sig: int, _frame: FrameType | None) -> None:
    if not _profile:
        _profile.append(cProfile.Profile())
        _profile[0].enable()


def _stop(_sig: int, _frame: FrameType | None) -> None:
    if _profile:
        p = _profile.pop()
        p.disable()
        p.dump_stats(f"{_to[0]}/{_to[1]}-{_written[0]}.prof")
        _written[0] += 1


if __name__ == "__main__":
    signal.signal(signal.SIGUSR1, _start)
    signal.signal(signal.SIGUSR2, _stop)
    from switchgear.cli.main import main

    sys.argv = ["switchgear", *sys.argv[3:]]
    main()
