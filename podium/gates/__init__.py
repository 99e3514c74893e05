"""Human gates: the request and the decision (`request`), how a run waits for one
(`interrupt`), and deciding pending gates from outside a run (`decision`).

Only the vocabulary is re-exported here: `decision` sits above the runtime (it resumes
compiled graphs) and is reached as `podium.decide` / `podium.gates.decision`.
"""

from podium.gates.request import Decision, GateKind, GateRequest, fits, may_decide

__all__ = ["Decision", "GateKind", "GateRequest", "fits", "may_decide"]
