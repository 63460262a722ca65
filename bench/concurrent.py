"""``bench/concurrent.py --rollouts N``: concurrent rollouts versus the native controller.

The code lives in ``bench/concurrency.py``. This file only exists under the documented name, and it has a
second job: ``python bench/<script>.py`` puts ``bench/`` first on ``sys.path``, so the stdlib's
``import concurrent.futures`` (asyncio needs it) finds this file as ``concurrent``. Imported under that name
it turns itself into the stdlib package (whose ``__init__`` is empty) by pointing ``__path__`` at it.
"""

from __future__ import annotations

import sys
import sysconfig
from pathlib import Path

if __name__ == "concurrent":  # imported in place of the stdlib package: become it
    __path__ = [str(Path(sysconfig.get_paths()["stdlib"]) / "concurrent")]
elif __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench.concurrency import main

    sys.exit(main())
