"""Several `langhost serve` processes on one PostgreSQL database and one Redis db.

The engine is `langgraph-runtime-pg` (CLI `langhost`), an open implementation of the
LangGraph server's PostgreSQL + Redis runtime for the stock `langgraph-api`. Its pins clash
with podium's, so it lives in a virtual environment of its own, cached under
`~/.cache/podium-scaleout-venv/<hash of the pins, pyproject.toml and this checkout's path>`
(`PODIUM_SCALEOUT_CACHE` overrides the folder); podium is installed there in editable mode
from this checkout, so the servers run the code under test. `engine/sitecustomize.py`,
on the servers' PYTHONPATH only, fixes the engine's two start-up problems.

Used by the `scaleout` tests (tests/scaleout/conftest.py) and by the scale-out benchmark
(bench/cases/scaleout.py). No pytest here.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
ENGINE = Path(__file__).resolve().parent / "engine"
PINS = ("langhost==0.11.1.post1", "langgraph-runtime-pg==0.11.1.post1", "langgraph-api==0.11.1")
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379"
STARTUP_TIMEOUT = 90.0


class ClusterError(RuntimeError):
    """The engine could not be installed or started; the message says why and where to look."""


def cache_dir() -> Path:
    """Where engine environments are kept between runs."""
    base = os.environ.get("PODIUM_SCALEOUT_CACHE")
    return Path(base) if base else Path.home() / ".cache" / "podium-scaleout-venv"


def _key() -> str:
    digest = hashlib.sha256()
    for path in (ENGINE / "requirements.txt", ENGINE / "overrides.txt", REPO / "pyproject.toml"):
        digest.update(path.read_bytes())
    digest.update(str(REPO).encode())
    digest.update(sys.version.encode())
    return digest.hexdigest()[:16]


#: podium requirements the engine's own pins replace (or that only serve `langgraph dev`).
ENGINE_PROVIDES = ("langgraph-checkpoint-postgres", "langgraph-cli", "langgraph-sdk")


def podium_requirements() -> list[str]:
    """podium's runtime dependencies and its server extra, from pyproject.toml, less what
    the engine pins itself: one list of dependencies to keep, not two."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["server"]]
    return [r for r in wanted if not r.startswith(ENGINE_PROVIDES)]


def engine_venv(log: Path | None = None) -> Path:
    """The engine's virtual environment, built on first use (a few minutes), then reused.

    Raises:
        ClusterError: when pip fails; the message holds the end of its output.
    """
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    venv = root / _key()
    done = venv / ".complete"
    with (root / ".lock").open("w") as lock:
        # Two test sessions may build at once; one builds, the other waits and reuses.
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists():
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        python = venv / "bin" / "python"
        steps = [
            [sys.executable, "-m", "venv", str(venv)],
            [
                str(python),
                "-m",
                "pip",
                "install",
                "-q",
                "-r",
                str(ENGINE / "requirements.txt"),
                *podium_requirements(),
            ],
            # On purpose over the engine's OpenTelemetry pin: see overrides.txt.
            [str(python), "-m", "pip", "install", "-q", "-r", str(ENGINE / "overrides.txt")],
            [str(python), "-m", "pip", "install", "-q", "--no-deps", "-e", str(REPO)],
        ]
        for step in steps:
            out = subprocess.run(step, capture_output=True, text=True, check=False)
            if log is not None:
                with log.open("a") as f:
                    f.write(" ".join(step) + "\n" + out.stdout + out.stderr)
            if out.returncode != 0:
                tail = "\n".join((out.stdout + out.stderr).splitlines()[-20:])
                raise ClusterError(f"building the engine venv failed at {step[2:]}:\n{tail}")
        done.write_text(json.dumps({"pins": PINS, "repo": str(REPO)}))
        return venv


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_reachable(url: str) -> str | None:
    """None when Redis answers PING at `url`, else why not."""
    host_port = url.split("://", 1)[-1].split("/", 1)[0]
    host, _, port = host_port.partition(":")
    try:
        with socket.create_connection((host, int(port or 6379)), timeout=3) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            answer = sock.recv(64)
    except OSError as exc:
        return f"Redis not reachable at {host_port}: {exc}"
    return None if answer.startswith(b"+PONG") else f"Redis at {host_port} answered {answer!r}"


@contextlib.contextmanager
def fresh_databases(admin_url: str, *names: str) -> Iterator[list[str]]:
    """Fresh PostgreSQL databases (one URL per name), dropped afterwards."""
    import psycopg

    stamp = f"{os.getpid()}_{uuid.uuid4().hex[:6]}"
    made = [f"podium_{name}_{stamp}" for name in names]
    base, _, _ = admin_url.rpartition("/")
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        for db in made:
            conn.execute(f'CREATE DATABASE "{db}"')
    try:
        yield [f"{base}/{db}" for db in made]
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            for db in made:
                conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


@dataclass
class Instance:
    """One server process."""

    name: str
    port: int
    log: Path
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 60) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class Cluster:
    """N engine processes sharing one workdir, one PostgreSQL database and one Redis db.

    Attributes:
        venv: The engine's virtual environment.
        workdir: Working directory of every process (its `reports/`, `effects.log`).
        env: The processes' environment (`engine_env`).
        instances: The processes, in start order.
        graphs: More graphs to serve (`name -> path:attribute`), beside langgraph.json's.
    """

    venv: Path
    workdir: Path
    env: dict[str, str]
    instances: list[Instance] = field(default_factory=list)
    graphs: dict[str, str] = field(default_factory=dict)

    @property
    def podium_url(self) -> str:
        """The database of podium's own tables, shared by every process."""
        return self.env["PODIUM_DATABASE_URL"]

    def config(self) -> Path:
        config = json.loads((REPO / "langgraph.json").read_text())
        config.pop("env", None)
        config["dependencies"] = [str(REPO)]
        config["graphs"]["slow_brief"] = f"{ENGINE / 'workflows.py'}:slow_brief"
        config["graphs"].update(self.graphs)
        path = self.workdir / "langgraph.json"
        path.write_text(json.dumps(config, indent=2))
        return path

    def start(self, count: int) -> list[Instance]:
        """Start `count` more processes, one after the other (each migrates at start)."""
        made = []
        for _ in range(count):
            instance = Instance(
                name=chr(ord("a") + len(self.instances)),
                port=free_port(),
                log=self.workdir / f"server-{len(self.instances)}.log",
            )
            self.instances.append(instance)
            self.launch(instance)
            made.append(instance)
        return made

    def launch(self, instance: Instance) -> None:
        """(Re)start the process of `instance` on its port and wait until it answers."""
        command = [
            str(self.venv / "bin" / "python"),
            "-m",
            "langhost",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(instance.port),
            "--config",
            str(self.config()),
        ]
        with instance.log.open("ab") as out:
            instance.proc = subprocess.Popen(
                command,
                cwd=self.workdir,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if instance.proc.poll() is not None:
                raise ClusterError(
                    f"server {instance.name} exited with {instance.proc.returncode}:\n"
                    f"{instance.log_tail()}"
                )
            try:
                if httpx.get(f"{instance.url}/ok", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise ClusterError(f"server {instance.name} not healthy:\n{instance.log_tail()}")

    def kill(self, instance: Instance) -> None:
        """SIGKILL the whole process group of `instance`: no shutdown, no cleanup."""
        if instance.alive:
            os.killpg(instance.proc.pid, signal.SIGKILL)  # type: ignore[union-attr]
            instance.proc.wait(timeout=10)  # type: ignore[union-attr]

    def stop(self) -> None:
        for instance in self.instances:
            if not instance.alive:
                continue
            os.killpg(instance.proc.pid, signal.SIGTERM)  # type: ignore[union-attr]
            try:
                instance.proc.wait(timeout=15)  # type: ignore[union-attr]
            except subprocess.TimeoutExpired:
                self.kill(instance)


def engine_env(
    *,
    database_uri: str,
    podium_url: str,
    redis_url: str,
    api_keys: Mapping[str, tuple[str, str, tuple[str, ...]]],
    token_secret: str,
    heartbeat: float = 2.0,
    jobs_per_process: int = 10,
    model_latency: float = 0.3,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of every engine process."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("PODIUM_", "LANGGRAPH_", "LANGSMITH_", "LANGCHAIN_", "LANGFUSE_", "VIRTUAL_ENV")
        )
        and k not in ("PYTHONPATH", "DATABASE_URI", "REDIS_URI")
    }
    env.update(
        DATABASE_URI=database_uri,
        REDIS_URI=redis_url,
        LG_BG_JOB_HEARTBEAT=str(heartbeat),
        N_JOBS_PER_WORKER=str(jobs_per_process),
        PODIUM_DATABASE_URL=podium_url,
        PODIUM_API_KEYS=";".join(
            f"{key}={tenant}:{user}:{'+'.join(roles)}"
            for key, (tenant, user, roles) in api_keys.items()
        ),
        PODIUM_TOKEN_SECRET=token_secret,
        SCALEOUT_MODEL_LATENCY=str(model_latency),
        # The engine's start-up fixes; nothing else of the test suite is on the path.
        PYTHONPATH=str(ENGINE),
        LANGGRAPH_CLI_NO_ANALYTICS="1",
        LANGSMITH_TRACING="false",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra or {})
    return env
