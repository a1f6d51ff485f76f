"""HTTP latency and throughput of top-10 recommendations, beside /health, with wrk.

Against a real server process (``python -m serving``) on the ML-100K deployment: first the
most requests/s wrk gets (2 threads, 32 connections), then a paced run near 1,000
requests/s (each connection waits a fixed delay between requests, so the rate is
approximate; the measured rate is printed). Users cycle through all 943; a third of the
requests carry ``recent=`` (an online fold-in), the rest hit nearline/offline sets.
The reference is ``GET /health`` in the same server, same run: the cost of HTTP alone.

    eval "$(nearline dev env)"
    python benchmarks/serving_http.py [--prefix b1] [--workers 1] [--seconds 10]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

from serving_deployment import ServerProcess, movielens

LUA = """
local n = 0
local paced = %(delay)d
request = function()
  n = n + 1
  local user = (n * 7919) %% 943 + 1
  local path = "%(path)s"
  if path ~= "/health" then
    path = "/v1/users/" .. user .. "/recommendations?k=10"
    if n %% 3 == 0 then path = path .. "&recent=" .. ((n * 31) %% 1682 + 1) end
  end
  return wrk.format("GET", path)
end
delay = function()
  return paced
end
"""


def wrk(url: str, path: str, seconds: int, connections: int, delay_ms: int = 0) -> dict[str, float]:
    script = Path(tempfile.mkdtemp()) / "load.lua"
    script.write_text(LUA % {"path": path, "delay": delay_ms})
    out = subprocess.run(  # noqa: S603
        [
            shutil.which("wrk") or "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    figures = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}  # type: ignore[union-attr]
    for pct in ("50", "99"):
        value, unit = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        figures[f"p{pct}"] = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    figures["errors"] = float(errors.group(1)) if errors else 0.0
    socket_errors = re.search(r"Socket errors: (.*)", out)
    if socket_errors:
        figures["errors"] += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1)))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", default=f"bench{uuid.uuid4().hex[:8]}")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    deployment = movielens(args.prefix)
    print(f"deployment prefix: {args.prefix}")
    env = {"NEARLINE_SERVING_WORKERS": str(args.workers)}
    with ServerProcess(deployment, **env) as server:
        wrk(server.url, "/recs", 3, 8)  # warm-up
        rows = []
        for name, path in (("GET /health (reference)", "/health"), ("GET top-10", "/recs")):
            most = wrk(server.url, path, args.seconds, 32)
            # 20 connections x (delay 19 ms + ~1 ms answer) ~= 1,000 requests/s.
            paced = wrk(server.url, path, args.seconds, 20, delay_ms=19)
            rows.append((name, most, paced))
    print(f"\nuvicorn workers: {args.workers}; wrk 2 threads; {args.seconds} s per run")
    most_head = f"{'max req/s':>10} {'p50 ms':>8} {'p99 ms':>8}"
    paced_head = f"{'paced req/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}"
    print(f"{'endpoint':26} {most_head} | {paced_head}")
    for name, most, paced in rows:
        print(
            f"{name:26} {most['rps']:10.0f} {most['p50']:8.2f} {most['p99']:8.2f} | "
            f"{paced['rps']:11.0f} {paced['p50']:8.2f} {paced['p99']:8.2f} "
            f"{int(most['errors'] + paced['errors']):6d}"
        )


if __name__ == "__main__":
    main()
