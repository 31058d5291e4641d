"""Run the ``ecovoucher`` command from QGIS.

Finds the command, runs it in a process group of its own, turns its ``--progress json`` stream
into Processing feedback, stops it cleanly on *Cancel*, and hands back the command's own message
when it fails. Standard library only: QGIS's Python offers nothing else we could rely on, and the
heavy libraries (numba, dask, geopandas) stay in the environment of the ``ecovoucher`` command.

The progress stream (``ecovoucher … --progress json``): one JSON object per line on stderr,
``{"stage": "zonal", "fraction": 0.42, "message": "…", "step": [2, 6]}`` — ``fraction`` is the
share of the stage done, ``step`` (optional) is the stage's place among the run's stages. Every
other line is the command's log or its error message.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

#: environment variable that overrides the configured command (a command line: program and args)
ENV_VAR = "ECOVOUCHER_EXE"
#: asks the command for the machine-readable progress stream
PROGRESS_ARGS = ("--progress", "json")
#: seconds the command gets to remove its partial output after SIGTERM before it is killed
GRACE_SECONDS = 30.0
#: exit status of a run stopped by SIGTERM (see ``pipeline.cli``)
TERMINATED = 143

# Variables QGIS sets for its own Python, GDAL and PROJ that would make another environment's
# Python import QGIS's modules or read a PROJ database of another version.
_FOREIGN_ENV = (
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "PYTHONEXECUTABLE",
    "PROJ_LIB",
    "PROJ_DATA",
    "GDAL_DATA",
    "GDAL_DRIVER_PATH",
    "GDAL_FILENAME_IS_UTF8",
    "QGIS_PREFIX_PATH",
)
_LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d (DEBUG|INFO|WARNING|ERROR|CRITICAL)\s+(.*)$")
_ERROR_START = re.compile(r"^(error|internal error): ")


class CommandNotFound(Exception):
    """No working ``ecovoucher`` command; the message says where we looked and how to set it."""


class CommandFailed(Exception):
    """The command ended with a non-zero status; the message is the command's own."""

    def __init__(self, message: str, returncode: int) -> None:
        super().__init__(message)
        self.returncode = returncode


class Canceled(Exception):
    """The user canceled and the command stopped (its partial output removed)."""


def split_command(text: str) -> list[str]:
    """A command line as typed in the settings or ``ECOVOUCHER_EXE``: one program path (which may
    contain spaces) or a program with arguments (``/opt/eco/bin/python -m pipeline``)."""
    text = text.strip()
    if not text:
        return []
    if os.path.exists(text):  # a path with spaces, unquoted
        return [text]
    return shlex.split(text, posix=os.name != "nt")


def _exe(folder: str | Path) -> Path:
    name = "ecovoucher.exe" if os.name == "nt" else "ecovoucher"
    return Path(folder) / name


def candidates(
    configured: str | None, environ=None, plugin_dir: Path | None = None
) -> list[tuple[str, list[str]]]:
    """Where to look for the command, best first: ``(where it came from, command)``.

    ``ECOVOUCHER_EXE``, then the setting, then ``ecovoucher`` on the PATH, then the checkout the
    plugin was built from (``build_info.json``), then the usual places of a user install, a
    virtual environment in the home folder, and conda environments."""
    environ = os.environ if environ is None else environ
    found: list[tuple[str, list[str]]] = []
    if environ.get(ENV_VAR, "").strip():
        found.append((ENV_VAR, split_command(environ[ENV_VAR])))
    if configured and configured.strip():
        found.append(("settings", split_command(configured)))
    on_path = shutil.which("ecovoucher", path=environ.get("PATH"))
    if on_path:
        found.append(("PATH", [on_path]))
    guesses: list[Path] = []
    info = _build_info(plugin_dir)
    if info.get("source"):
        src = Path(info["source"])
        guesses += [_exe(src / ".venv" / "bin"), _exe(src / ".venv" / "Scripts")]
    home = Path.home()
    guesses += [_exe(home / ".local" / "bin")]
    for venv in (".venv", "venv", "ecovoucher", "ecovoucher/.venv", ".virtualenvs/ecovoucher"):
        guesses += [_exe(home / venv / "bin"), _exe(home / venv / "Scripts")]
    for base in (environ.get("CONDA_PREFIX", ""), str(home / "miniconda3"), str(home / "anaconda3"),
                 str(home / "miniforge3"), str(home / "mambaforge")):  # fmt: skip
        if base:
            guesses += [_exe(Path(base) / "bin"), _exe(Path(base) / "Scripts")]
            for env in sorted(glob.glob(os.path.join(base, "envs", "*"))):
                guesses += [_exe(Path(env) / "bin"), _exe(Path(env) / "Scripts")]
    for path in guesses:
        if path.is_file() and os.access(path, os.X_OK):
            found.append(("found", [str(path)]))
    return found


def _build_info(plugin_dir: Path | None) -> dict:
    """``build_info.json`` written by ``scripts/build_qgis_plugin.sh`` beside this module."""
    path = (plugin_dir or Path(__file__).parent) / "build_info.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def clean_env(environ=None) -> dict[str, str]:
    """The environment for the command: QGIS's own Python/GDAL/PROJ variables removed, UTF-8 and
    unbuffered output (the stream is read line by line as it comes)."""
    env = dict(os.environ if environ is None else environ)
    for name in _FOREIGN_ENV:
        env.pop(name, None)
    env["PYTHONIOENCODING"] = "utf-8"
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONUTF8"] = "1"
    return env


def version_of(command: list[str], timeout: float = 120.0) -> str:
    """``ecovoucher --version`` (e.g. ``ecovoucher 0.1.0``); CommandNotFound when it does not run."""
    try:
        proc = subprocess.run(
            [*command, "--version"],
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout,
            env=clean_env(),
            stdin=subprocess.DEVNULL,
            creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise CommandNotFound(f"{shlex.join(command)}: {exc}") from exc
    text = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0 or not text.startswith("ecovoucher"):
        raise CommandNotFound(f"{shlex.join(command)} --version: {text or proc.returncode}")
    return text.splitlines()[0]


def find_command(configured: str | None, environ=None) -> tuple[list[str], str, str]:
    """The first candidate that answers ``--version``: ``(command, where from, version)``."""
    tried = []
    for where, command in candidates(configured, environ):
        if not command:
            continue
        try:
            return command, where, version_of(command)
        except CommandNotFound as exc:
            tried.append(f"{where}: {exc}")
    raise CommandNotFound("\n".join(tried))


def parse_progress(line: str) -> dict | None:
    """One event of the progress stream, or None for any other line."""
    if not line.startswith("{"):
        return None
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if not isinstance(event, dict) or "fraction" not in event:
        return None
    return event


def overall_percent(event: dict) -> float:
    """0–100 over the whole run: the stage's place (``step``) and the share of it done."""
    fraction = min(max(float(event.get("fraction") or 0.0), 0.0), 1.0)
    step = event.get("step")
    if isinstance(step, (list, tuple)) and len(step) == 2 and step[1]:
        i, n = int(step[0]), int(step[1])
        return 100.0 * (max(i - 1, 0) + fraction) / n
    return 100.0 * fraction


def error_text(stderr: list[str], returncode: int) -> str:
    """The command's message: from its ``error:`` line to the end (a list of every problem may
    follow), without progress events; else its last lines."""
    lines = [ln for ln in stderr if parse_progress(ln) is None]
    for i, ln in enumerate(lines):
        if _ERROR_START.match(ln):
            text = "\n".join(lines[i:]).strip()
            return re.sub(r"^error: ", "", text)
    tail = "\n".join(lines[-15:]).strip()
    return tail or f"ecovoucher ended with status {returncode} and said nothing"


@dataclass
class Outcome:
    returncode: int
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    canceled: bool = False


def _pump(stream, name: str, lines: queue.Queue) -> None:
    for line in iter(stream.readline, ""):
        lines.put((name, line.rstrip("\r\n")))
    lines.put((name, None))


class _Relay:
    """Turns the command's lines into feedback (called in the thread that runs the algorithm)."""

    def __init__(self, feedback) -> None:
        self.feedback = feedback
        self.stage = None
        self.text = None

    def stdout(self, line: str) -> None:
        if line.strip():
            self.feedback.pushInfo(line)

    def stderr(self, line: str) -> None:
        event = parse_progress(line)
        if event is not None:
            self.feedback.setProgress(overall_percent(event))
            message = str(event.get("message") or event.get("stage") or "")
            if message != self.text:  # the dialog's text: what runs now
                self.text = message
                self.feedback.setProgressText(message)
            if event.get("stage") != self.stage:  # the log: one line a stage
                self.stage = event.get("stage")
                self.feedback.pushInfo(f"[{self.stage}] {message}")
            return
        m = _LOG_LINE.match(line)
        if m and m.group(1) in ("WARNING", "ERROR", "CRITICAL"):
            self.feedback.pushWarning(m.group(2))
        elif m:
            self.feedback.pushInfo(m.group(2))
        elif line.strip():
            self.feedback.pushConsoleInfo(line)


def run(command: list[str], args: list[str], feedback, *, grace: float = GRACE_SECONDS,
        poll: float = 0.1, canceling: str = "canceling") -> Outcome:  # fmt: skip
    """Run ``command + args`` and relay its output to ``feedback`` (QgsProcessingFeedback or any
    object with its methods) until it ends. When ``feedback.isCanceled()`` becomes true the whole
    process group gets SIGTERM (the command then removes its partial output and exits 143) and,
    if it has not ended after ``grace`` seconds, SIGKILL; ``canceling`` is logged then."""
    feedback.pushCommandInfo(shlex.join([*command, *args]))
    popen = {}
    if os.name == "nt":
        popen["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.CREATE_NO_WINDOW
    else:
        popen["start_new_session"] = True  # its own process group: Cancel reaches every child
    proc = subprocess.Popen(
        [*command, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="replace",
        env=clean_env(),
        **popen,
    )
    lines: queue.Queue = queue.Queue()
    pumps = [
        threading.Thread(target=_pump, args=(proc.stdout, "stdout", lines), daemon=True),
        threading.Thread(target=_pump, args=(proc.stderr, "stderr", lines), daemon=True),
    ]
    for t in pumps:
        t.start()
    relay, outcome = _Relay(feedback), Outcome(returncode=0)
    open_streams, killed_at = 2, None
    while open_streams or proc.poll() is None:
        if feedback.isCanceled() and not outcome.canceled:
            outcome.canceled = True
            feedback.pushInfo(canceling)
            _signal_group(proc, kill=False)
            killed_at = time.monotonic()
        if killed_at is not None and time.monotonic() - killed_at > grace:
            _signal_group(proc, kill=True)
            killed_at = float("inf")
        try:
            name, line = lines.get(timeout=poll)
        except queue.Empty:
            continue
        if line is None:
            open_streams -= 1
            continue
        getattr(outcome, name).append(line)
        getattr(relay, name)(line)
    outcome.returncode = proc.wait()
    proc.stdout.close()
    proc.stderr.close()
    if outcome.canceled:
        _wait_for_group(proc)
    return outcome


def _signal_group(proc: subprocess.Popen, kill: bool) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
        if os.name == "nt":
            if kill:
                proc.kill()
            else:
                proc.send_signal(signal.CTRL_BREAK_EVENT)
        else:
            os.killpg(proc.pid, signal.SIGKILL if kill else signal.SIGTERM)


def _wait_for_group(proc: subprocess.Popen, timeout: float = GRACE_SECONDS) -> None:
    """After a cancel, wait until no process of the group is left (a wrapper such as
    ``conda run`` may end before the command it started has removed its partial files)."""
    if os.name == "nt":
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.05)
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)


def check(outcome: Outcome) -> Outcome:
    """Raise :class:`Canceled` or :class:`CommandFailed` (with the command's message) unless the
    command succeeded."""
    if outcome.canceled:
        raise Canceled()
    if outcome.returncode != 0:
        raise CommandFailed(error_text(outcome.stderr, outcome.returncode), outcome.returncode)
    return outcome
