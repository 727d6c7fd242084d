"""One process of a multi-process test: a Runtime on shared state, driven line by line on stdin.

    python process_runner.py CONFIG_DIR STATE_URL WRAPPER

prints ``{"ready": ...}`` once started, then answers each command with one JSON line:
``run N THREADS TIMEOUT`` (N requests over THREADS threads, each with TIMEOUT seconds),
``status`` (the runtime's ``state_status()``), ``health`` (the supervisor's probe counts and
each instance's state) and ``quit``.
"""

from __future__ import annotations

import collections
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from actors.runtime import Runtime


def main() -> int:
    config, state, wrapper_name = sys.argv[1:4]
    with Runtime.from_config(config, state=state) as rt:
        wrapper = rt.factory.get_wrapper(wrapper_name)
        print(json.dumps({"ready": True}), flush=True)
        for line in sys.stdin:
            command = line.split()
            if not command:
                continue
            if command[0] == "run":
                n, threads, timeout = int(command[1]), int(command[2]), float(command[3])

                def one(i: int, timeout: float = timeout) -> str:
                    try:
                        response = wrapper.generate([{"role": "user", "content": f"hi {i}"}], timeout=timeout)
                    except Exception as exc:
                        return f"{type(exc).__name__}: {exc}"[:300]
                    return f"ok:{response.instance}"

                with ThreadPoolExecutor(threads) as pool:
                    outcomes = collections.Counter(pool.map(one, range(n)))
                print(json.dumps(dict(outcomes)), flush=True)
            elif command[0] == "status":
                print(json.dumps(rt.state_status()), flush=True)
            elif command[0] == "health":
                assert rt.state is not None
                states = {n: s["state"] for n, s in rt.state.snapshot(time.monotonic()).items()}
                print(json.dumps({"probes": rt.supervisor_stats()["probes"], "states": states}), flush=True)
            elif command[0] == "quit":
                break
    return 0


if __name__ == "__main__":
    sys.exit(main())
