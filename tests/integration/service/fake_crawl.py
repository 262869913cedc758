"""A stand-in for `rightswatch crawl --run-id N` in scheduler tests (the real one is the default).

FAKE_CRAWL_MODE: "ok" exits 0, "fail" exits 3, "sleep" writes its pid to FAKE_CRAWL_DIR/run-N.pid
and sleeps until killed. Every start is appended to FAKE_CRAWL_DIR/starts.
"""

import os
import sys
import time
from pathlib import Path

if __name__ == "__main__":
    assert sys.argv[1:3] == ["crawl", "--run-id"], sys.argv
    run_id = sys.argv[3]
    out = Path(os.environ["FAKE_CRAWL_DIR"])
    with open(out / "starts", "a") as f:
        f.write(run_id + "\n")
    mode = os.environ.get("FAKE_CRAWL_MODE", "ok")
    if mode == "fail":
        sys.exit(3)
    if mode == "sleep":
        (out / f"run-{run_id}.pid").write_text(str(os.getpid()))
        time.sleep(600)
    sys.exit(0)
