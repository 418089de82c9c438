"""`dvc repro` in parallel lanes: independent stale stages run side by side, each group through `dvc repro -s`.

Most stages keep about one core busy, so a second lane shortens the run. The stages, their graph and which are stale
come from DVC's CLI (`dvc stage list`, `dvc dag --dot`, `dvc status --json`); stages marked `meta: {exclusive: true}`
in dvc.yaml (those that time models) and everything downstream of them run afterwards, alone, in one `dvc repro`.
DVC locks each stage's deps and outs and writes dvc.lock under its repository lock, so the result is that of a serial
`dvc repro`.

Run it as `python -m edgecompress.tools.lanes [--jobs N]` (what `make run` does).
"""
import argparse
import json
import re
import shutil
import subprocess
import sys
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from graphlib import TopologicalSorter
from pathlib import Path

import yaml

EDGE = re.compile(r'"([^"]+)" -> "([^"]+)"')  # in `dvc dag --dot`: the first stage runs before the second
PRINTING = threading.Lock()


def dvc(root, *args) -> str:
    """The output of `dvc <args>` at `root`; SystemExit with DVC's error message if it fails."""
    result = subprocess.run(["dvc", "--wait-for-lock", *args], cwd=root, capture_output=True, text=True)
    if result.returncode:
        raise SystemExit("error: " + result.stderr.strip().removeprefix("ERROR: "))
    return result.stdout


def is_exclusive(definition: dict) -> bool:
    """Whether a stage's definition in dvc.yaml (a foreach one's or its `do:`) has `meta: {exclusive: true}`."""
    return any((part.get("meta") or {}).get("exclusive") for part in (definition, definition.get("do") or {}))


def read_project(root) -> tuple:
    """({stage: the stages it depends on}, the stages `dvc status` finds changed, the exclusive stages) of the DVC
    project at `root`."""
    upstream = {name: set() for name in dvc(root, "stage", "list", "--name-only").split()}
    for before, after in EDGE.findall(dvc(root, "dag", "--dot")):
        if before in upstream and after in upstream:
            upstream[after].add(before)
    changed = set(json.loads(dvc(root, "status", "--json"))) & set(upstream)
    definitions = yaml.safe_load((Path(root) / "dvc.yaml").read_text()).get("stages") or {}
    return upstream, changed, {name for name in upstream if is_exclusive(definitions.get(name.split("@")[0], {}))}


def downstream(upstream: dict, names: set) -> set:
    """`names` and every stage that depends on one of them, directly or not."""
    closure = set()
    for name in TopologicalSorter(upstream).static_order():  # a stage's upstream stages come first
        if name in names or upstream[name] & closure:
            closure.add(name)
    return closure


def plan(upstream: dict, changed: set, exclusive: set) -> tuple:
    """The stale stages (`changed` and all downstream) as ({group's first stage: its stages}, most stale stages
    downstream first; {group: the groups it waits for}; the stale stages of the exclusive part, run after them)."""
    stale = downstream(upstream, changed)
    later = stale & downstream(upstream, exclusive)
    parallel = [name for name in TopologicalSorter(upstream).static_order() if name in stale - later]
    groups, lead = {}, {}
    # a stage that nothing waits for and that waits for one stale stage (and that one's upstream stages) only, such as
    # a conversion, joins that stage's group
    for name in parallel:
        waits = upstream[name] & set(parallel)
        nearest = [dep for dep in waits if not waits & downstream(upstream, {dep}) - {dep}]
        alone = not any(name in upstream[other] for other in parallel)
        lead[name] = nearest[0] if alone and len(nearest) == 1 else name
        groups.setdefault(lead[name], []).append(name)
    after = {first: {lead[dep] for name in stages for dep in upstream[name] if dep in lead} - {first}
             for first, stages in groups.items()}
    rank = sorted(groups, key=lambda first: -len(downstream(upstream, {first}) & set(parallel)))
    return {first: groups[first] for first in rank}, after, later


def run_lanes(groups: dict, after: dict, jobs: int, repro) -> list:
    """Call `repro(stages)` (an exit status) for each group once those it waits for are done, `jobs` at a time, the
    earliest in `groups` first; the failed groups (after a failure nothing new starts, the running ones finish)."""
    sorter, ready, running, failed = TopologicalSorter(after), [], {}, []
    sorter.prepare()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        while running or (sorter.is_active() and not failed):
            ready = sorted([*ready, *sorter.get_ready()], key=list(groups).index)
            while ready and len(running) < jobs and not failed:
                first = ready.pop(0)
                running[pool.submit(repro, groups[first])] = first
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                first = running.pop(future)
                if future.exception():  # the group fails, its traceback printed
                    traceback.print_exception(future.exception())
                if future.exception() or future.result():
                    failed.append(first)
                else:
                    sorter.done(first)
    return failed


def call(root, args: list, label: str, out) -> int:
    """Run `dvc --wait-for-lock <args>` at `root`, each line of its output printed to `out` after `label |`; its
    exit status."""
    with subprocess.Popen(["dvc", "--wait-for-lock", *args], cwd=root, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout:
            with PRINTING:
                print(f"{label} | {line.rstrip()}", file=out, flush=True)
    return proc.returncode


def reproduce(root=".", jobs: int = 2, out=sys.stdout) -> dict:
    """Bring every stage of the DVC project at `root` up to date, `jobs` lanes at a time; {the stages of each
    `dvc repro` that ran: its wall seconds}."""
    if not shutil.which("dvc"):
        raise SystemExit("error: dvc is not on PATH: run `make run`, or `source .venv/bin/activate` first")
    groups, after, later = plan(*read_project(root))
    if not groups and not later:
        print("Data and pipelines are up to date.", file=out, flush=True)
        return {}
    seconds = {}

    def repro(label: str, *args) -> int:
        start = time.perf_counter()
        code = call(root, ["repro", *args], label, out)
        seconds[label] = time.perf_counter() - start
        return code

    failed = run_lanes(groups, after, jobs, lambda stages: repro(" ".join(stages), "--single-item", *stages))
    if failed:
        raise SystemExit(f"error: dvc repro of {' '.join(' '.join(groups[first]) for first in failed)} failed "
                         "(its output above says why); the stages that finished keep their outputs")
    if later and repro("dvc repro"):
        raise SystemExit("error: dvc repro of the exclusive stages failed")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="stages running at once (default 2)")
    args = parser.parse_args()
    if args.jobs < 1:
        parser.error(f"--jobs {args.jobs}: at least 1")
    reproduce(".", args.jobs)


if __name__ == "__main__":
    main()
