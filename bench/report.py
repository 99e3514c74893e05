"""The results table, the machine and package versions, and results.json."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.measure import Figure

PACKAGES = [
    "podium",
    "langgraph",
    "langgraph-checkpoint",
    "langgraph-checkpoint-postgres",
    "langgraph-checkpoint-sqlite",
    "langgraph-prebuilt",
    "langgraph-supervisor",
    "langchain-core",
    "langchain",
    "psycopg",
    "psycopg-pool",
    "tiktoken",
]

#: Cases of the issue not measured yet (none: every case runs).
PENDING: list[str] = []


def versions() -> dict[str, str | None]:
    """Installed versions of the packages that matter here (None when not installed)."""
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def machine(postgres_url: str | None) -> dict[str, Any]:
    """Cores, memory, CPU model, load, and the PostgreSQL server version."""
    info: dict[str, Any] = {
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        total_kb = int(meminfo.read_text().split("\n")[0].split()[1])
        info["memory_gib"] = round(total_kb / 1024 / 1024, 1)
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        models = [
            line.split(":", 1)[1].strip()
            for line in cpuinfo.read_text().splitlines()
            if line.startswith("model name")
        ]
        info["cpu"] = models[0] if models else None
    if postgres_url:
        import psycopg

        with psycopg.connect(postgres_url) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        info["postgresql"] = row[0] if row else None
    return info


def podium_source() -> dict[str, Any]:
    """Where the benchmarked podium was imported from, its commit, and whether the
    package had uncommitted changes there (`git status -- podium`)."""
    import podium

    root = Path(podium.__file__).resolve().parents[1]

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    return {
        "path": str(root),
        "commit": git("rev-parse", "HEAD") or None,
        "dirty": bool(git("status", "--porcelain", "--", "podium")),
    }


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}" if value < 10 else f"{value:.1f}"


def table(figures: list[Figure]) -> str:
    """A Markdown table of the figures."""
    head = ["case", "metric", "podium", "baseline", "baseline value", "ratio", "target", "met"]
    rows = [head, ["---"] * len(head)]
    for f in figures:
        met = {True: "yes", False: "**no**", None: "ref" if f.ratio is not None else "-"}[f.met]
        ratio = f"{f.ratio:.2f}" if f.ratio is not None else "-"
        rows.append(
            [
                f.case,
                f.metric,
                _num(f.podium),
                f.baseline,
                _num(f.baseline_value),
                ratio,
                f.target or "(reference)",
                met if not f.note.startswith("skipped") else f.note,
            ]
        )
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def write(path: Path, payload: dict[str, Any], figures: list[Figure]) -> None:
    """Write results.json: the run's facts and every figure with its raw samples."""
    payload = {**payload, "figures": [f.as_dict() for f in figures], "pending": PENDING}
    path.write_text(json.dumps(payload, indent=2) + "\n")
