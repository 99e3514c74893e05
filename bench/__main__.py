"""`python -m bench [--quick] [--reps N] [--only CASE,...] [--out PATH]`.

Runs the cases, prints the results table on stdout (progress goes to stderr) and writes
the results as JSON. The full run writes bench/results.json; the quick run, which only
checks that the harness works, writes bench/results-quick.json unless --out says otherwise.
PostgreSQL comes from PODIUM_BENCH_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/test);
the benchmark drops and recreates its own database `podium_bench` (`podium_bench_quick`
with --quick) on that server.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
import warnings
from pathlib import Path

from bench import pg, report
from bench.cases import CASES
from bench.measure import Figure, log
from bench.settings import Settings

HERE = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, 2 repetitions")
    parser.add_argument("--reps", type=int, help="timed repetitions (default 7, quick 2)")
    parser.add_argument("--only", help=f"comma-separated cases among {', '.join(CASES)}")
    parser.add_argument("--out", type=Path, help="where to write the JSON results")
    args = parser.parse_args(argv)
    unknown = set((args.only or "").split(",")) - set(CASES) - {""}
    if unknown:
        parser.error(f"unknown case(s) {', '.join(sorted(unknown))}; cases: {', '.join(CASES)}")
    return args


def prepare_postgres(settings: Settings) -> None:
    """Recreate the benchmark database, or record why the PostgreSQL cases are skipped."""
    admin = os.environ.get("PODIUM_BENCH_POSTGRES_URL", pg.DEFAULT_ADMIN_URL)
    reason = pg.unreachable(admin)
    if reason is not None:
        settings.postgres_skip = f"PostgreSQL unreachable ({reason})"
        log(f"warning: {settings.postgres_skip}; PostgreSQL figures are skipped")
        return
    # Quick runs (CI) use their own database, so they never disturb a full run.
    name = f"{pg.BENCH_DATABASE}_quick" if settings.quick else pg.BENCH_DATABASE
    settings.postgres_url = pg.recreate_database(admin, name)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = Settings.for_mode(quick=args.quick, reps=args.reps)
    out = args.out or HERE / ("results-quick.json" if args.quick else "results.json")
    names = [n for n in CASES if not args.only or n in args.only.split(",")]
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    prepare_postgres(settings)
    started, load_before = time.time(), os.getloadavg()
    figures: list[Figure] = []
    try:
        for name in names:
            figures += CASES[name](settings)
    finally:
        shutil.rmtree(settings.workdir, ignore_errors=True)
    payload = {
        "command": "python -m bench" + (" --quick" if args.quick else ""),
        "argv": sys.argv[1:] if argv is None else argv,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "duration_s": round(time.time() - started, 1),
        "settings": settings.as_dict(),
        "machine": {
            **report.machine(settings.postgres_url),
            "load_average_before": [round(x, 2) for x in load_before],
        },
        "versions": report.versions(),
        "podium_source": report.podium_source(),
    }
    report.write(out, payload, figures)
    print(report.table(figures))
    if report.PENDING:
        print(f"\npending: {'; '.join(report.PENDING)}")
    log(f"wrote {out} in {payload['duration_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
