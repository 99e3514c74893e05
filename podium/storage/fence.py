"""The writer fence: a run's writer lock, checked by the savers before each checkpoint write.

`podium.governance.writers` puts the lock a run holds in the run's config
(`WRITER_FENCE`); LangGraph hands that config to every checkpoint write of the run, its
subgraphs' included. A PostgreSQL lock lives in a database session that the server can
end (a restart, a terminated backend) while the run goes on; before a write, a lock that
may have been lost (`suspect`, no I/O) is made sure of (`check`), which raises
`WriterLockLost` when another run took the thread meanwhile. So a run that lost its
thread writes nothing more, even in the middle of a step.
"""

from __future__ import annotations

from typing import Any, Protocol

#: The configurable key of the writer lock a run holds (`__`: kept out of checkpoints).
WRITER_FENCE = "__podium_writer_fence"


class WriterFence(Protocol):
    """A run's writer lock as the savers see it (`podium.stores.writers.HeldThread`)."""

    def suspect(self) -> bool:
        """Whether the lock may have been lost (no I/O)."""
        ...

    def check(self) -> None:
        """Raise `WriterLockLost` when another run holds the thread now (may do I/O)."""
        ...


def suspect_fence(config: Any) -> WriterFence | None:
    """The writer lock of `config`'s run when it may have been lost (check it before a
    write), else None."""
    fence = ((config or {}).get("configurable") or {}).get(WRITER_FENCE)
    return fence if fence is not None and fence.suspect() else None
