"""A `rightswatch worker` with test-sized times and a chosen crawl command.

python worker_main.py LEASE_S VISIBILITY_S CONCURRENCY CRAWL_COMMAND...
"""

from __future__ import annotations

import sys

from rightswatch.config import from_env
from rightswatch.tasks import WorkerOptions, run_worker

if __name__ == "__main__":
    lease, visibility, concurrency, *command = sys.argv[1:]
    run_worker(
        from_env(),
        concurrency=int(concurrency),
        options=WorkerOptions(lease_s=float(lease), crawl_command=command),
        visibility_timeout_s=int(visibility),
        loglevel="INFO",
    )
