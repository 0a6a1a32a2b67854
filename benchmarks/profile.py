"""Profile one variant of the session benchmark under load: py-spy samples the app process
while wrk drives it (as in the throughput runs: app on CPU 0, wrk and Redis on CPU 1).

    python -m benchmarks.profile --variant ours-redis --endpoint read --out /tmp/read.svg

`--format raw` writes collapsed stacks (one line per stack and its sample count) instead of
a flame graph, for summing up by file or line.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.sessions_bench import ENDPOINTS, VARIANTS, Bench

PY_SPY = Path(sys.executable).with_name("py-spy")  # installed with the bench extras


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=VARIANTS, default="ours-redis")
    parser.add_argument("--endpoint", choices=sorted(ENDPOINTS), default="read")
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument(
        "--format", choices=["flamegraph", "raw", "speedscope"], default="flamegraph"
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sf-profile-") as tmp:
        bench = Bench(Path(tmp), connections=32, sessions=256, variants=[args.variant])
        try:
            bench.start()
            bench.wrk(args.variant, args.endpoint, 2)  # warm-up
            spy = subprocess.Popen(  # noqa: S603 (fixed program)
                [
                    str(PY_SPY),
                    "record",
                    "--nonblocking",  # sampling must not stop the app it measures
                    "--rate",
                    "400",
                    "--duration",
                    str(args.seconds),
                    "--format",
                    args.format,
                    "--output",
                    str(args.out),
                    "--pid",
                    str(bench.procs[-1].pid),
                ],
                stdout=subprocess.DEVNULL,
            )
            result = bench.wrk(args.variant, args.endpoint, args.seconds)
            spy.wait()
        finally:
            bench.stop()
    print(f"{args.variant} {args.endpoint}: {result['rps']:.0f} req/s under py-spy -> {args.out}")


if __name__ == "__main__":
    main()
