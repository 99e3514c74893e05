"""Run settings: the full benchmark, or the quick mode CI runs to check the harness works."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Settings:
    """Sizes of every case and where the databases are.

    Attributes:
        quick: Small sizes and 2 repetitions; checks the harness, not the figures.
        reps: Timed repetitions per system (after one warm-up round).
        overhead_k: Delegations per run in the overhead case.
        context_k: The two run lengths of the context case.
        fanout_tasks: Independent tasks in the fan-out case.
        fanout_latency: Simulated model latency of each fan-out task, seconds.
        throughput_runs: Concurrent workflows in the throughput case.
        throughput_k: Delegations per workflow in the throughput case.
        throughput_latency: Simulated latency of every model call there, seconds.
        throughput_reps: Repetitions there (more: its runs share the disk's fsync latency,
            which varies from second to second on a shared machine).
        storage_k: Delegations in the storage case.
        fairness_flood, fairness_b: Runs tenant A floods and tenant B submits (fairness).
        fairness_k, fairness_latency: Delegations per run and model latency there.
        fairness_max_runs: Each tenant's `max_runs` there.
        fairness_reps: Repetitions there.
        scaleout_runs, scaleout_latency: Runs of research_brief to the gate, and the model
            latency, in the scale-out throughput case (skipped in quick mode).
        postgres_url: The benchmark's own database, or None when PostgreSQL is unreachable.
        postgres_skip: Why PostgreSQL cases are skipped (None when they run).
        workdir: A scratch directory for SQLite files.
    """

    quick: bool = False
    reps: int = 7
    overhead_k: int = 20
    context_k: tuple[int, int] = (20, 40)
    fanout_tasks: int = 8
    fanout_latency: float = 0.2
    throughput_runs: int = 50
    throughput_k: int = 5
    throughput_latency: float = 0.1
    throughput_reps: int = 9
    storage_k: int = 50
    fairness_flood: int = 100
    fairness_b: int = 5
    fairness_k: int = 3
    fairness_latency: float = 0.1
    fairness_max_runs: int = 10
    fairness_reps: int = 3
    scaleout_runs: int = 40
    scaleout_latency: float = 0.5
    scaleout_reps: int = 2
    postgres_url: str | None = None
    postgres_skip: str | None = None
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="podium-bench-")))

    @classmethod
    def for_mode(cls, *, quick: bool, reps: int | None = None) -> Settings:
        """Full sizes, or the quick ones (small K, 2 repetitions, few workflows)."""
        if not quick:
            return cls(reps=reps or 7, throughput_reps=max(reps or 7, 9))
        return cls(
            quick=True,
            reps=reps or 2,
            overhead_k=4,
            context_k=(4, 8),
            fanout_latency=0.05,
            throughput_runs=5,
            throughput_k=2,
            throughput_latency=0.02,
            throughput_reps=reps or 2,
            storage_k=5,
            fairness_flood=10,
            fairness_b=3,
            fairness_k=2,
            fairness_latency=0.02,
            fairness_max_runs=3,
            fairness_reps=1,
        )

    def sqlite_url(self, name: str) -> str:
        """A fresh SQLite file in the scratch directory."""
        path = self.workdir / f"{name}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}"

    def as_dict(self) -> dict[str, object]:
        """The sizes, for results.json (no URLs or paths)."""
        return {
            "quick": self.quick,
            "reps": self.reps,
            "overhead_k": self.overhead_k,
            "context_k": list(self.context_k),
            "fanout_tasks": self.fanout_tasks,
            "fanout_latency_s": self.fanout_latency,
            "throughput_runs": self.throughput_runs,
            "throughput_k": self.throughput_k,
            "throughput_latency_s": self.throughput_latency,
            "throughput_reps": self.throughput_reps,
            "storage_k": self.storage_k,
            "fairness_flood": self.fairness_flood,
            "fairness_b": self.fairness_b,
            "fairness_k": self.fairness_k,
            "fairness_latency_s": self.fairness_latency,
            "fairness_max_runs": self.fairness_max_runs,
            "fairness_reps": self.fairness_reps,
            "scaleout_runs": self.scaleout_runs,
            "scaleout_latency_s": self.scaleout_latency,
            "scaleout_reps": self.scaleout_reps,
        }
