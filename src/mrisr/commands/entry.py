"""The console entry point around the typer app: every error is ONE line on stderr.

typer/click print usage errors (bad or missing values, unknown options) as a framed multi-line
"Usage / Error" box. :func:`run_app` runs the app with ``standalone_mode=False`` instead and
prints each of them as ``mrisr: error: <what is wrong>`` (naming the option and its valid range
or choices) with exit status 2; a :class:`mrisr.errors.MrisrError` prints its one line with its
exit code; Ctrl-C prints ``mrisr: interrupted`` and exits 130; an ``OSError`` that escapes a
command (a full disk, a permission denied) prints one line with the file and the system's
reason and exits 1. Any other exception is a bug and keeps its traceback. ``--help``,
``--version`` and a bare ``mrisr`` (the help, exit 2) behave as before.

The value checks the options share (seeds, positive finite floats) live here too, so every
command states the same range in the same words.
"""

from __future__ import annotations

import errno
import math
import os
import re
import sys
from collections.abc import Sequence
from typing import Any

from mrisr.errors import ConfigError, MrisrError

#: ``--seed`` of ``mrisr degrade``: torch's generator takes a signed 64-bit seed.
DEGRADE_SEED_MAX = 2**63 - 1
#: ``--seed`` of ``mrisr learn-kernel``: the training engine also seeds NumPy's legacy global
#: RNG (``np.random.seed``), which takes 32 bits.
TRAIN_SEED_MAX = 2**32 - 1


def check_seed(seed: int | None, high: int = DEGRADE_SEED_MAX, option: str = "--seed") -> None:
    """``None`` (a fresh random seed) or an integer in ``[0, high]``; a one-line ConfigError
    otherwise."""
    if seed is None:
        return
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= high:
        bound = f"{high} (2**{high.bit_length()} - 1)"
        raise ConfigError(f"{option} must be an integer from 0 to {bound}, got {seed}")


def check_positive(value: float | None, option: str, unit: str = "") -> None:
    """``None`` or a finite number > 0 (not NaN, not inf); a one-line ConfigError otherwise."""
    if value is None:
        return
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise ConfigError(f"{option} must be a finite number > 0{unit}, got {value}")


# ----------------------------------------------------------------------------- running


def _given(args: Sequence[str], opts: Sequence[str]) -> str | None:
    """The value given on the command line to an option named ``opts`` (last one wins)."""
    found = None
    for i, a in enumerate(args):
        if a == "--":
            break
        for o in opts:
            if a == o and i + 1 < len(args):
                found = args[i + 1]
            elif o.startswith("--") and a.startswith(o + "="):
                found = a[len(o) + 1 :]
    return found


#: typer's wordings of a range or type check → the short form the rest of mrisr uses.
_PHRASES = (
    (r"input should be greater than or equal to", "must be >="),
    (r"input should be less than or equal to", "must be <="),
    (r"input should be greater than", "must be >"),
    (r"input should be less than", "must be <"),
    (r"input should be a valid integer.*", "must be an integer"),
    (r"input should be a valid number.*", "must be a number"),
)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _click_exceptions() -> Any:
    """click's exception classes: vendored in typer >= 0.22 (``typer._click``), else click."""
    try:
        from typer._click import exceptions
    except ImportError:  # pragma: no cover - typer with an external click
        from click import exceptions  # type: ignore[no-redef]
    return exceptions


def usage_message(exc: Any, args: Sequence[str]) -> str:
    """A click usage error as one line naming the option, the value given and what is valid."""
    cx = _click_exceptions()
    param = getattr(exc, "param", None)
    opts = list(getattr(param, "opts", None) or []) + list(getattr(param, "secondary_opts", []))
    is_option = param is not None and getattr(param, "param_type_name", "") == "option"
    if isinstance(exc, cx.MissingParameter):
        msg = exc.format_message()
    elif isinstance(exc, cx.BadParameter) and param is not None:
        hint = exc.param_hint or ("/".join(opts) if is_option else param.get_error_hint(None))
        if not isinstance(hint, str):
            hint = "/".join(hint)
        reason = str(exc.message).removeprefix("Value error, ")
        reason = reason[:1].lower() + reason[1:]
        for long, short in _PHRASES:
            reason = re.sub(long, short, reason)
        given = _given(args, opts) if is_option else None
        value = f" '{given}'" if given is not None and given not in reason else ""
        msg = f"invalid value{value} for {hint.replace(chr(39), '')}: {reason}"
    else:
        msg = exc.format_message()
    ctx = getattr(exc, "ctx", None)
    where = getattr(ctx, "command_path", None) if ctx is not None else None
    msg = _one_line(msg).rstrip(" .")
    if where and ctx.command.get_help_option(ctx) is not None:
        msg += f"; see '{where} --help'"
    return msg


def _oserror_message(exc: OSError) -> str:
    name = errno.errorcode.get(exc.errno or 0, "")
    why = exc.strerror or str(exc) or type(exc).__name__
    where = f"'{exc.filename}': " if exc.filename else ""
    return _one_line(f"{where}{why}" + (f" ({name})" if name else ""))


def run_app(app: Any, args: Sequence[str] | None = None) -> int:
    """Run the typer ``app`` on ``args`` (default ``sys.argv[1:]``); return the exit status,
    having printed any error as one line on stderr."""
    import typer
    import typer.main

    cx = _click_exceptions()
    args = list(sys.argv[1:] if args is None else args)
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=args, prog_name="mrisr", standalone_mode=False)
    except getattr(cx, "NoArgsIsHelpError", ()) as exc:  # bare ``mrisr``: the help, as before
        typer.echo(exc.ctx.get_help())
        return 2
    except cx.UsageError as exc:
        typer.echo(f"mrisr: error: {usage_message(exc, args)}", err=True)
        return 2
    except cx.ClickException as exc:
        typer.echo(f"mrisr: error: {_one_line(exc.format_message())}", err=True)
        return exc.exit_code or 1
    except MrisrError as exc:
        typer.echo(f"mrisr: error: {exc}", err=True)
        return exc.exit_code
    except (KeyboardInterrupt, typer.Abort):
        typer.echo("mrisr: interrupted", err=True)
        return 130
    except MemoryError:
        typer.echo(
            "mrisr: error: out of memory (upscale: try a smaller --batch or --tile)", err=True
        )
        return 1
    except OSError as exc:
        if exc.errno == errno.EPIPE:  # stdout closed early (| head): quiet, as click does
            _quiet_broken_pipe()
            return 1
        typer.echo(f"mrisr: error: {_oserror_message(exc)}", err=True)
        return 1
    if rv == 130:  # click turned a KeyboardInterrupt into Exit(130)
        typer.echo("mrisr: interrupted", err=True)
    return rv if isinstance(rv, int) and not isinstance(rv, bool) else 0


def _quiet_broken_pipe() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
