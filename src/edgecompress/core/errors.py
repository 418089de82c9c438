"""Errors a user can cause and fix, and the wrapper that turns them into one line and an exit code."""
import inspect
import os
import sys
from importlib import import_module

from edgecompress.core.names import PRELOAD_SOCKET


class UserError(Exception):
    """A fault in the user's params, files or devices: reported as one line, never as a traceback."""


def run_stage(main, loads_tensorflow: bool = False) -> None:
    """Run a stage's main(*command-line arguments); a UserError prints `error: <message>` and exits with 2.
    A stage that loads TensorFlow runs in a child of `make run`'s preload server when there is one."""
    try:
        inspect.signature(main).bind(*sys.argv[1:])
    except TypeError:
        usage = " ".join(f"[{p.name.upper()} ...]" if p.kind is p.VAR_POSITIONAL else
                         p.name.upper() if p.default is p.empty else f"[{p.name.upper()}]"
                         for p in inspect.signature(main).parameters.values())
        print(f"usage: python {sys.argv[0]} {usage}", file=sys.stderr)
        sys.exit(2)
    if loads_tensorflow and PRELOAD_SOCKET in os.environ:  # imported by name: how a stage runs is not what it computes,
        import_module("edgecompress.tools.preload").hand_off()  # so the tooling is no dependency of any stage
    try:
        main(*sys.argv[1:])
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
