"""Prompt texts of the supervisor and the workers.

The supervisor sees the goal and one-line summaries of finished tasks, never the
workers' full transcripts, so its context grows linearly with the number of tasks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from podium.words import count

PLAN_MARKER = "Answer with a JSON plan only"
CHOICE_MARKER = "Answer with a JSON choice only"
SUMMARY_CHARS = 400
#: Finished tasks the router sees in full; older ones are summarised as counts per agent.
RECENT = 2

PLANNER_SYSTEM = (
    """You are the supervisor of the podium workflow {name!r}. Break the goal \
into a small plan of tasks for the agents below. Tasks that do not depend on each other run \
in parallel, so only add a dependency when a task needs another task's result.

Agents:
{agents}

"""
    + PLAN_MARKER
    + """, in this form:
{{"tasks": [{{"id": "t1", "agent": "<agent name>", "instruction": "<what to do>", \
"depends_on": []}}]}}"""
)

ROUTER_SYSTEM = (
    """You are the supervisor of the podium workflow {name!r}. Each turn, choose \
the agent that acts next, or FINISH when the goal is met.

Agents:
{agents}

"""
    + CHOICE_MARKER
    + """, in this form:
{{"next": "<agent name or FINISH>", "instruction": "<what that agent must do>"}}"""
)

REPAIR = "That answer is invalid: {error}. Answer again with the corrected JSON only, nothing else."

WORKER_SYSTEM = """You are {agent}, an agent of the podium workflow {workflow!r}. {description}
Do the task you are given. Use your tools when they help. Answer with the result only."""


def goal_message(goal: str, previous_answer: str | None = None) -> str:
    text = f"Goal: {goal}"
    if previous_answer:
        text += f"\n\nEarlier answer in this conversation:\n{clip(previous_answer, 1200)}"
    return text


def progress_message(goal: str, done: Iterable[Mapping[str, Any]]) -> str:
    """The router's view of a round: the latest results in full, older ones as counts.

    Its size does not grow with the number of turns (only with the number of agents),
    so the supervisor's total context over a run grows linearly, not quadratically.
    """
    records = list(done)
    older, recent = records[:-RECENT], records[-RECENT:]
    parts = []
    if older:
        counts = Counter(r["agent"] for r in older)
        listed = ", ".join(f"{agent} x{n}" for agent, n in sorted(counts.items()))
        parts.append(f"Earlier tasks by agent ({len(older)}): {listed}")
    parts += [f"- {r['task_id']} {r['agent']}: {clip(r['summary'], SUMMARY_CHARS)}" for r in recent]
    body = "\n".join(parts) if parts else "nothing yet"
    return f"Goal: {goal}\n\nDone so far ({count(len(records), 'task')}):\n{body}"


def task_message(task: Mapping[str, Any], goal: str, inputs: Iterable[Mapping[str, Any]]) -> str:
    text = f"Task {task['id']}: {task['instruction']}\n\nOverall goal: {goal}"
    blocks = [f"### {i['task_id']} ({i['agent']})\n{i['summary']}" for i in inputs]
    if blocks:
        text += "\n\nResults of the tasks this one depends on:\n" + "\n\n".join(blocks)
    return text


def clip(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
