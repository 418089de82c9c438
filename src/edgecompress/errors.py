"""Errors a user can cause and fix, and the wrapper that turns them into one line and an exit code."""
import sys


class UserError(Exception):
    """A fault in the user's params, files or devices: reported as one line, never as a traceback."""


def run_stage(main) -> None:
    """Run a stage's main(); a UserError prints `error: <message>` and exits with status 2."""
    try:
        main()
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
