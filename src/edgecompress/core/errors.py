"""Errors a user can cause and fix, and the wrapper that turns them into one line and an exit code."""
import inspect
import sys


class UserError(Exception):
    """A fault in the user's params, files or devices: reported as one line, never as a traceback."""


def run_stage(main) -> None:
    """Run a stage's main(*command-line arguments); a UserError prints `error: <message>` and exits with 2."""
    try:
        inspect.signature(main).bind(*sys.argv[1:])
    except TypeError:
        usage = " ".join(f"[{p.name.upper()} ...]" if p.kind is p.VAR_POSITIONAL else
                         p.name.upper() if p.default is p.empty else f"[{p.name.upper()}]"
                         for p in inspect.signature(main).parameters.values())
        print(f"usage: python {sys.argv[0]} {usage}", file=sys.stderr)
        sys.exit(2)
    try:
        main(*sys.argv[1:])
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
