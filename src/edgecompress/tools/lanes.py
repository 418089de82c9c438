"""`dvc repro` in parallel lanes: independent stale stages run side by side, each through `dvc repro -s`.

DVC runs one stage at a time, and most stages here keep about one core busy (TensorFlow's start-up, tracing,
conversion and small convolutions are mostly serial), so a second lane shortens the run (the default one on 2
cores by about a fifth). Stages marked `meta: {exclusive: true}` in dvc.yaml (those that time models) and
everything downstream of them run afterwards, alone, through a plain `dvc repro`. DVC keeps each stage's deps
and outs locked while it runs and writes dvc.lock under its repository lock, so the result is that of a serial
`dvc repro`: the same stages run, the same dvc.lock entries are written. The stages that load TensorFlow fork
from a server that imported it once (edgecompress.tools.preload), each still a process of its own.

Run it as `python -m edgecompress.tools.lanes [--jobs N] [--no-preload]` (what `make run` does).
"""
import argparse
import re
import shutil
import subprocess
import sys
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from edgecompress.tools import preload

STAGE_START = re.compile(r"Running stage '([^']+)'")


@dataclass
class Group:
    """Stages one `dvc repro -s` runs in order: a stage and the leaves (its conversions) that only wait for it."""

    stages: list
    after: set = field(default_factory=set)  # names of stale stages outside the group that must finish first


def stale_graph(root) -> tuple:
    """(DVC's stage graph as {name: set of names it depends on}, names of the stale stages in DVC's run order,
    names of the exclusive stages and everything downstream of them)."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(str(root)) as repo:
            graph = repo.index.graph  # an edge runs from a stage to a stage it depends on
            upstream = {stage.addressing: {dep.addressing for dep in graph.successors(stage)} for stage in graph}
            changed = set(repo.status())
            exclusive = {stage.addressing for stage in graph if (stage.meta or {}).get("exclusive")}
            order = [stage.addressing for stage in _run_order(graph)]
    except DvcException as err:
        raise SystemExit(f"error: {err}") from None
    stale = _downstream_closure(upstream, changed)
    return upstream, [name for name in order if name in stale], _downstream_closure(upstream, exclusive)


def _run_order(graph) -> list:
    import networkx as nx

    return list(reversed(list(nx.topological_sort(graph))))


def _downstream_closure(upstream: dict, names: set) -> set:
    """`names` and every stage that depends on one of them, directly or not."""
    closure, grew = set(names), True
    while grew:
        before = len(closure)
        closure |= {name for name, deps in upstream.items() if deps & closure}
        grew = len(closure) != before
    return closure


def groups(upstream: dict, stale: list, later: set) -> list:
    """The stale stages outside `later` as Groups, those with the most stale stages downstream first: a stage that
    no other stage of the parallel part depends on (a conversion) joins the group of its last stale upstream stage
    when it waits for nothing else."""
    parallel = [name for name in stale if name not in later]
    has_dependents = {dep for name in parallel for dep in upstream[name]}
    ancestors = {}
    for name in parallel:  # run order: a stage's upstream stages come first
        ancestors[name] = set().union(*({dep} | ancestors.get(dep, set()) for dep in upstream[name]))
    by_stage, result = {}, []
    for name in parallel:
        waits = [dep for dep in parallel if dep in upstream[name]]
        last = waits[-1] if waits else None
        if name not in has_dependents and last and all(dep in ancestors[last] for dep in waits[:-1]):
            by_stage[last].stages.append(name)
            by_stage[name] = by_stage[last]
            continue
        by_stage[name] = Group([name], set(waits))
        result.append(by_stage[name])
    downstream = {name: len(_downstream_closure(upstream, {name}) & set(parallel)) for name in parallel}
    return sorted(result, key=lambda group: -downstream[group.stages[0]])


class Lanes:
    """Runs Groups on `jobs` lanes as soon as what they wait for is done; prints every line prefixed by its stage."""

    def __init__(self, root, jobs: int, out=sys.stdout, env=None):
        self.root, self.jobs, self.out, self.env = Path(root), jobs, out, env  # env: DVC's; None: this process's
        self.seconds, self.failed = {}, None
        self._print_lock = threading.Lock()

    def say(self, text: str) -> None:
        with self._print_lock:
            print(text, file=self.out, flush=True)

    def call(self, args, label: str, finished=lambda name: None) -> int:
        """Run one dvc command, echoing its output prefixed by the stage it is running and timing each stage;
        `finished(stage)` as soon as the command goes on to its next stage."""
        current, since = label, time.perf_counter()
        with subprocess.Popen(["dvc", "--wait-for-lock", *args], cwd=self.root, env=self.env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
            for line in proc.stdout:
                started = STAGE_START.search(line)
                if started:
                    now = time.perf_counter()
                    if current != label:
                        self.seconds[current] = now - since
                        finished(current)
                    current, since = started.group(1), now
                self.say(f"{current} | {line.rstrip()}")
        if current != label:
            self.seconds[current] = time.perf_counter() - since
        return proc.returncode

    def run(self, todo: list) -> bool:
        """Run every Group of `todo`; False once one fails (the running ones finish, no new one starts)."""
        done, wake = set(), threading.Condition()
        running = 0

        def finished(name):
            with wake:
                done.add(name)
                wake.notify_all()

        def lane(group):
            nonlocal running
            code = 1
            try:
                code = self.call(["repro", "--single-item", *group.stages], group.stages[0], finished)
            finally:  # an exception here fails the group (its traceback printed) instead of leaving the run waiting
                with wake:
                    running -= 1
                    if code:
                        self.failed = self.failed or " ".join(name for name in group.stages if name not in done)
                    else:
                        done.update(group.stages)
                    wake.notify_all()

        with wake:
            while todo and not self.failed:
                ready = [group for group in todo if group.after <= done]  # todo is in priority order
                if ready and running < self.jobs:
                    group = ready[0]
                    todo.remove(group)
                    running += 1
                    threading.Thread(target=lane, args=(group,), daemon=True).start()
                else:
                    wake.wait()
            wake.wait_for(lambda: running == 0)
        return not self.failed


def reproduce(root=".", jobs: int = 2, out=sys.stdout, preloaded: bool = True) -> dict:
    """Bring every stage of the DVC project at `root` up to date, `jobs` lanes at a time; {stage: seconds} of
    the stages that ran. Raises SystemExit naming the failed stages if one fails. `preloaded`: TensorFlow stages
    fork from a preload server."""
    upstream, stale, later = stale_graph(root)
    if not stale:
        print("Data and pipelines are up to date.", file=out, flush=True)
        return {}
    if not shutil.which("dvc"):
        raise SystemExit("error: dvc is not on PATH: run `make run`, or `source .venv/bin/activate` first")
    with preload.server() if preloaded and preload.supported() else nullcontext() as env:
        lanes = Lanes(root, jobs, out, env)
        if not lanes.run(groups(upstream, stale, later)):
            raise SystemExit(f"error: dvc repro of {lanes.failed} failed (its output above says why); the stages "
                             "that finished keep their outputs")
        if any(name in later for name in stale) and lanes.call(["repro"], "dvc repro"):
            raise SystemExit("error: dvc repro of the exclusive stages failed")
    return lanes.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="stages running at once (default 2)")
    parser.add_argument("--no-preload", action="store_true",
                        help="start every stage in a fresh Python, TensorFlow's import (about 4 s) included")
    args = parser.parse_args()
    if args.jobs < 1:
        parser.error(f"--jobs {args.jobs}: at least 1")
    reproduce(".", args.jobs, preloaded=not args.no_preload)


if __name__ == "__main__":
    main()
