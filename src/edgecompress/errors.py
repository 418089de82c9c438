"""Errors a user can cause and fix, and the wrapper that turns them into one line and an exit code."""
import inspect
import sys

from edgecompress import preload


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
    if loads_tensorflow:
        preload.hand_off()
    try:
        main(*sys.argv[1:])
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
