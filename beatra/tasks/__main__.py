"""`python -m beatra.tasks [dramatiq options]`: the task workers (the Procfile's `worker:` line).

The same as `dramatiq beatra.tasks.worker --skip-logging …`, except that the Dramatiq parent
process logs JSON too (its own lines: boot, a worker process that died); plain `dramatiq`
would print those in its own text format. Each worker process's lines are JSON from
beatra.logs and pass through the parent unchanged.
"""

from __future__ import annotations

import logging
import sys

from dramatiq.cli import main as dramatiq_main

from beatra.config import log_level
from beatra.logs import JsonFormatter


def run(argv: list[str]) -> int:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(log_level().upper())
    sys.argv = ["dramatiq", "beatra.tasks.worker", "--skip-logging", *argv]
    return dramatiq_main() or 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
