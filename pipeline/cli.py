"""Command line: ``ecovoucher init | validate | run | demo | vep``. Parses arguments and calls one
library function per command; turns errors into exit codes (0 ok, 2 bad input, 1 internal error,
130 interrupted by Ctrl-C, 143 terminated by SIGTERM)."""

from __future__ import annotations

import argparse
import difflib
import logging
import os
import re
import signal
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from pipeline import __version__
from pipeline.errors import EcoVoucherError

log = logging.getLogger("pipeline")


def _engine_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("parallel engine")
    g.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="local worker threads (default: all cores; 1 runs serially without dask)",
    )
    g.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="run the parallel stages on an existing dask.distributed scheduler, e.g. "
        "tcp://host:8786 (workers must see the input paths)",
    )
    g.add_argument(
        "--scheduler-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="with --scheduler: how long to wait for the scheduler to answer, for a first "
        "worker, and for progress while no worker is connected, before stopping with a message "
        "(default 60)",
    )
    g.add_argument(
        "--partition-size",
        type=int,
        default=16,
        metavar="N",
        help="counties per parallel task (default 16); memory per task grows with it",
    )
    g.add_argument(
        "--force",
        action="store_true",
        help="recompute everything, ignoring finished partitions of an earlier run",
    )
    g.add_argument(
        "--no-resume",
        action="store_true",
        help="do not keep finished partitions under OUT/.ecovoucher-cache",
    )


def _settings_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--catalog", required=True, type=Path, help="data catalog YAML (where the data are)"
    )
    p.add_argument(
        "--config", required=True, type=Path, help="run configuration YAML (what to compute)"
    )


def _wait_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="if another run is writing into the same --out, wait up to SECONDS for it to finish "
        "(default 0: stop at once, naming that run)",
    )


def _progress_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--progress",
        choices=["auto", "json", "none"],
        default="auto",
        help="auto: progress bars when stderr is a terminal (default); json: one JSON object per "
        'line on stderr, {"stage", "fraction", "message", "step"}, for programs such as the '
        "QGIS plugin (README, 'QGIS plugin'); none: no progress",
    )


def _outputs_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--landuse-change",
        action="store_true",
        help="also write the layer landuse_change: polygons of every piece of each county whose "
        "land-use class changed (as config outputs: {landuse_change: true}); with raster land "
        "use also landuse_change.tif, from_code · 1000 + to_code",
    )
    p.add_argument(
        "--landuse-layers",
        action="store_true",
        help="also write the layers landuse_<year>: each year's land use clipped to the "
        "counties (as config outputs: {landuse: true})",
    )


def _memory_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("memory (vector land use; docs/cluster.md, 'Memory model')")
    g.add_argument(
        "--memory-limit",
        type=_size,
        default=None,
        metavar="SIZE",
        help="keep the run under SIZE (e.g. 4G, 1500M; binary units) by holding the land use a "
        "tile of counties at a time, as many tiles as the memory model says; results unchanged "
        "(default: 75%% of this machine's memory; a run that fits is not tiled)",
    )
    g.add_argument(
        "--tiles",
        type=int,
        default=None,
        metavar="N",
        help="hold the land use in N tiles of counties, one at a time (overrides --memory-limit)",
    )


_UNITS = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def _size(text: str) -> int:
    """Bytes of '4G', '4GiB', '1500MB', '2.5g', '.5G', '65536B' (binary units: 1G = 1 GiB); a bare
    number is MiB."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(?:([kmgt])i?b?|(b))?\s*", text.lower())
    if not m:
        raise argparse.ArgumentTypeError(f"'{text}' is not a size such as 4G, 4GiB or 1500M")
    number, unit, in_bytes = float(m.group(1)), m.group(2), m.group(3)
    size = int(number * (1 if in_bytes else _UNITS[unit] if unit else 2**20))
    if size <= 0:
        raise argparse.ArgumentTypeError(f"'{text}': the memory limit must be more than 0")
    return size


class _Parser(argparse.ArgumentParser):
    """argparse, plus: a misspelt option is reported as unknown, with the closest valid one,
    before argparse would report a required option as missing (``--catalgo`` is a typo of
    ``--catalog``, not a missing ``--catalog``)."""

    commands: dict[str, argparse.ArgumentParser]

    def unknown_option(self, argv: list[str]) -> str | None:
        """The first option of ``argv`` that neither ``ecovoucher`` nor its command knows (with
        a close match when there is one), or None."""
        known = set(self._option_string_actions)
        command = None
        for token in argv:
            if token == "--":
                break
            if not token.startswith("-") or _is_number(token):
                if command is None and token in self.commands:
                    command = token
                    known |= set(self.commands[token]._option_string_actions)
                continue
            name = token.split("=", 1)[0]
            longs = sorted(k for k in known if k.startswith("--"))
            if name in known or (
                name.startswith("--") and sum(k.startswith(name) for k in longs) == 1
            ):  # argparse accepts a unique prefix (--cat for --catalog)
                continue
            close = difflib.get_close_matches(name, longs, n=1, cutoff=0.6)
            where = f"ecovoucher {command} --help" if command else "ecovoucher --help"
            hint = f"; did you mean {close[0]}?" if close else ""
            return f"unknown option {name}{hint} (every option: {where})"
        return None


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _verbosity(p: argparse.ArgumentParser, default: object) -> None:
    """-v/-q before or after the command: the commands' copies default to SUPPRESS, so they
    set the value only when given there."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("-v", "--verbose", action="store_true", default=default,
                   help="debug logs and tracebacks")  # fmt: skip
    g.add_argument("-q", "--quiet", action="store_true", default=default,
                   help="warnings and errors only")  # fmt: skip


def _command(sub, name: str, summary: str, description: str, examples: str):
    p = sub.add_parser(
        name,
        help=summary,
        description=textwrap.fill(description, 79),
        epilog="example:\n" + examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _verbosity(p, argparse.SUPPRESS)
    return p


def _parser() -> _Parser:
    p = _Parser(
        prog="ecovoucher",
        description=textwrap.fill(
            "Ecological-land vouchers (生态券) from land-use maps, and site VEP. Start with "
            "`ecovoucher init my_study` (a commented catalog and config), then `validate` and "
            "`run`; `ecovoucher COMMAND --help` shows each command's options.",
            79,
        ),
        epilog="examples:\n"
        "  ecovoucher demo                 # the Beijing–Tianjin–Hebei demo, into out/demo\n"
        "  ecovoucher init my_study        # catalog.yaml and config.yaml to edit\n"
        "  ecovoucher run --catalog my_study/catalog.yaml --config my_study/config.yaml "
        "--out out/my_study -v\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"ecovoucher {__version__}")
    _verbosity(p, False)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    init = _command(
        sub, "init", "write a commented catalog and config to start from",
        "Writes DIR/catalog.yaml (where the data are) and DIR/config.yaml (what to compute), "
        "every key explained in Chinese and English with its unit, with a table of national "
        "reference values and their sources. As written they run on the demo data (built first "
        "when missing): change the paths and field names to your own data, then validate and "
        "run.",
        "  ecovoucher init my_study\n"
        "  ecovoucher validate --catalog my_study/catalog.yaml --config my_study/config.yaml\n",
    )  # fmt: skip
    init.add_argument("dir", type=Path, metavar="DIR", help="folder to write into (created)")
    init.add_argument("--force", action="store_true", help="overwrite catalog.yaml/config.yaml")
    _progress_option(init)
    init.add_argument(
        "--demo-data", type=Path, default=None, metavar="DIR",
        help="where the demo data are, built there when missing (default: .cache/demo in the "
        "source checkout, else DIR/demo-data)",
    )  # fmt: skip

    run = _command(
        sub, "run", "run the eco-voucher pipeline",
        "Computes the vouchers of every county and writes OUT/eco_vouchers.gpkg, the QGIS "
        "project, figures, tables and OUT/report.html. Bad input stops the run with one message "
        "naming the file, field or county ids and the fix, and leaves the output folder as it "
        "was.",
        "  ecovoucher run --catalog catalog.yaml --config config.yaml --out out\n"
        "  ecovoucher run --catalog c.yaml --config f.yaml --out out --workers 2 --memory-limit 4G\n",
    )  # fmt: skip
    _settings_options(run)
    run.add_argument("--out", required=True, type=Path, help="output folder")
    _wait_option(run)
    _progress_option(run)
    _outputs_option(run)
    _engine_options(run)
    _memory_options(run)

    val = _command(
        sub, "validate", "check every input, list every problem, compute nothing",
        "Reads the catalog, the config and every file they name, and lists every problem found "
        "in any of them together, each with the file, field, value or county ids and the fix. "
        "Exit status 0 when there is none, 2 otherwise.",
        "  ecovoucher validate --catalog catalog.yaml --config config.yaml\n",
    )  # fmt: skip
    _settings_options(val)
    _progress_option(val)
    _memory_options(val)

    demo = _command(
        sub, "demo", "build the Beijing–Tianjin–Hebei demo data and run on it",
        "Builds the demo data (real county boundaries; SYNTHETIC land use and statistics) in "
        "--cache, then runs the pipeline on them into --out. Their report carries a demo "
        "banner: the numbers are not real.",
        "  ecovoucher demo\n"
        "  ecovoucher demo --out out/national --provinces all --polygons 550000 --workers 2\n",
    )  # fmt: skip
    demo.add_argument(
        "--out", type=Path, default=Path("out/demo"), help="output folder (default out/demo)"
    )
    demo.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="where the demo data are built (default: .cache/demo in the source checkout)",
    )
    demo.add_argument(
        "--provinces",
        nargs="+",
        default=None,
        help="provinces to build (default: 北京市 天津市 河北省; 'all' = 31 mainland provinces)",
    )
    demo.add_argument("--polygons", type=int, default=None, help="land-use polygons per year")
    demo.add_argument("--seed", type=int, default=2022, help="random seed (default 2022)")
    _wait_option(demo)
    _progress_option(demo)
    _outputs_option(demo)
    demo.add_argument(
        "--format",
        choices=["vector", "raster"],
        default="vector",
        help="land use as RESDC-style shapefiles (default) or burned to 30 m GeoTIFFs",
    )
    _engine_options(demo)
    _memory_options(demo)

    vep = _command(
        sub, "vep", "value of the ecosystem products of one site (VEP)",
        "Values each ecosystem product of one site (V = P − P′) by income capitalization, "
        "market comparison, residual or cost, and writes OUT/vep.gpkg and two CSVs.",
        "  ecovoucher vep --config configs/vep/niujiacun.yaml --out out/vep\n",
    )  # fmt: skip
    vep.add_argument("--config", required=True, type=Path, help="VEP config YAML")
    vep.add_argument("--out", required=True, type=Path, help="output folder")
    _wait_option(vep)
    _progress_option(vep)
    p.commands = dict(sub.choices)
    return p


def _setup_logging(verbose: bool, quiet: bool) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S"))
    root = logging.getLogger("pipeline")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def _engine(args: argparse.Namespace, progress: bool):
    from pipeline.runtime.engine import Engine
    from pipeline.runtime.scheduler import DEFAULT_TIMEOUT, check_address

    if args.workers is not None and args.workers < 1:
        raise _usage("--workers must be 1 or more")
    scheduler = check_address(args.scheduler) if args.scheduler is not None else None
    timeout = DEFAULT_TIMEOUT if args.scheduler_timeout is None else args.scheduler_timeout
    if not (0 < timeout < float("inf")):
        raise _usage("--scheduler-timeout must be a number of seconds, more than 0")
    engine = Engine(workers=args.workers, scheduler=scheduler, progress=progress, timeout=timeout)
    if scheduler is not None:
        engine.client()  # connect (and wait for a worker) before any work: failures come first
    return engine


def _run_options(args: argparse.Namespace) -> dict:
    if args.partition_size < 1:
        raise _usage("--partition-size must be 1 or more")
    return {
        "wait": _wait(args),
        "landuse_change": args.landuse_change,
        "landuse_layers": args.landuse_layers,
        "partition_size": args.partition_size,
        "resume": not args.no_resume,
        "force": args.force,
        **_tiling(args),
    }


def _wait(args: argparse.Namespace) -> float:
    if not (args.wait >= 0 and args.wait < float("inf")):
        raise _usage("--wait must be a number of seconds, 0 or more")
    return args.wait


def _tiling(args: argparse.Namespace) -> dict:
    if args.tiles is not None and args.tiles < 1:
        raise _usage("--tiles must be 1 or more")
    return {"tiles": args.tiles, "memory_limit": args.memory_limit}


def _usage(msg: str) -> EcoVoucherError:
    from pipeline.errors import InputError

    return InputError(msg, where="command line")


def _cmd_run(args: argparse.Namespace, progress: bool) -> int:
    _prefetch_checksums(args.catalog)
    from pipeline.run import run_pipeline

    engine = _engine(args, progress)
    try:
        result = run_pipeline(args.catalog, args.config, args.out, engine, **_run_options(args))
    finally:
        engine.close()
    print(result.gpkg)
    return 0


def _prefetch_checksums(catalog_path: Path) -> None:
    """Start hashing the catalog's input files while the heavy libraries are imported (see
    :mod:`pipeline.runtime.checksums`); a catalog that does not load is reported by the run itself."""
    from pipeline.runtime.checksums import prefetch

    try:
        from pipeline.settings.catalog import load_catalog

        catalog = load_catalog(catalog_path)
    except Exception:  # the run itself reports it, with the fix
        return
    data = catalog.datasets
    prefetch(
        [
            data.counties.path,
            data.socioeconomic.path,
            *(f for e in data.landuse.values() for f in e.all_files),
        ]
    )


def _cmd_validate(args: argparse.Namespace, progress: bool) -> int:
    from pipeline.run import check_inputs
    from pipeline.runtime.engine import Engine

    _, inputs = check_inputs(args.catalog, args.config, Engine(progress=progress), **_tiling(args))
    for note in inputs.all_notes():
        print(f"note: {note}")
    landuse = [f"{y}: {text}" for y, text in inputs.landuse.describe().items()]
    print(f"OK: {len(inputs.counties)} counties, land use {'; '.join(landuse)}; no problems found")
    return 0


def _cmd_demo(args: argparse.Namespace, progress: bool) -> int:
    from pipeline.demo.run import run_demo

    engine = _engine(args, progress)
    try:
        result = run_demo(
            args.out,
            cache=args.cache,
            provinces=args.provinces,
            polygons=args.polygons,
            seed=args.seed,
            engine=engine,
            landuse_format=args.format,
            **_run_options(args),
        )
    finally:
        engine.close()
    from pipeline.demo.run import default_cache

    print(f"demo data (synthetic): {Path(args.cache or default_cache()).resolve()}")
    print(f"demo output: {result.gpkg}")
    print(f"open first: {result.gpkg.parent / 'report.html'}")
    return 0


def _cmd_init(args: argparse.Namespace, progress: bool) -> int:
    from pipeline.demo.run import ensure_demo_data
    from pipeline.settings.init import init_project

    data = ensure_demo_data(args.demo_data, fallback=args.dir / "demo-data", progress=progress)
    catalog, config = init_project(args.dir, data, force=args.force)
    print(f"wrote {catalog} and {config}; they point at the demo data in {data}")
    print("next: change the paths and field names to your own data, then")
    print(f"  ecovoucher validate --catalog {catalog} --config {config}")
    print(f"  ecovoucher run --catalog {catalog} --config {config} --out {args.dir / 'out'}")
    return 0


def _cmd_vep(args: argparse.Namespace, progress: bool) -> int:
    from pipeline.runtime import progress as stream
    from pipeline.vep import run_vep

    stream.stage_started("vep", "valuing the site's ecosystem products")
    run_vep(args.config, args.out, wait=_wait(args))
    stream.stage_done("vep")
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace, bool], int]] = {
    "init": _cmd_init,
    "run": _cmd_run,
    "validate": _cmd_validate,
    "demo": _cmd_demo,
    "vep": _cmd_vep,
}


#: set when SIGTERM arrived: an extension that runs Python code (pydantic's serializers) may
#: wrap the :class:`Terminated` raised inside it into an error of its own, which must still end
#: the run as terminated (exit 143), not as an internal error
_SIGTERM_SEEN = threading.Event()


class Terminated(BaseException):
    """SIGTERM (a batch system's kill, ``kill PID``): unwinds the run like Ctrl-C, so that no
    partial output is left behind. Not a KeyboardInterrupt: CPython remembers a KeyboardInterrupt
    raised while an extension runs Python code and then ends the process by SIGINT (status −2)
    even though we caught it; a class of our own exits with 143 every time."""


def _terminate(signum: int, frame: FrameType | None) -> None:
    """Raise :class:`Terminated` in the main thread — unless it is inside Python's import
    machinery, where an exception raised between taking and releasing the global import lock
    leaves it held, and every later import in any thread then waits forever (seen: a run killed
    during start-up hung). There the signal is delivered again 50 ms later."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            threading.Timer(0.05, os.kill, (os.getpid(), signum)).start()
            return
        frame = frame.f_back
    _SIGTERM_SEEN.set()
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    unknown = parser.unknown_option(argv)
    if unknown:
        parser.print_usage(sys.stderr)
        print(f"ecovoucher: error: {unknown}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    _SIGTERM_SEEN.clear()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
        if hasattr(signal, "SIGBREAK"):  # Windows: the QGIS plugin's Cancel sends CTRL_BREAK
            signal.signal(signal.SIGBREAK, _terminate)
    _setup_logging(args.verbose, args.quiet)
    progress = args.progress == "auto" and not args.quiet and sys.stderr.isatty()
    from pipeline.runtime import progress as stream  # bars off with json: it is for a program

    stream.to_json(sys.stderr if args.progress == "json" else None)
    staging = sys.modules.get("pipeline.runtime.staging")
    if staging is not None:  # commits of earlier calls in this process (tests) do not count
        staging.COMMITTED.clear()
    try:
        return COMMANDS[args.command](args, progress)
    except EcoVoucherError as exc:
        if args.verbose:
            log.exception("failed")
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"interrupted; {_what_was_written(args)}", file=sys.stderr)
        return 130
    except Terminated:
        print(f"terminated; {_what_was_written(args)}", file=sys.stderr)
        return 143
    except Exception as exc:
        if _SIGTERM_SEEN.is_set():  # a Terminated that an extension wrapped (see _SIGTERM_SEEN)
            print(f"terminated; {_what_was_written(args)}", file=sys.stderr)
            return 143
        if args.verbose:
            log.exception("internal error")
        print(
            f"internal error: {type(exc).__name__}: {exc}\n"
            "This is a bug in ecovoucher, not in your input; run again with -v for the traceback "
            "and report it.",
            file=sys.stderr,
        )
        return 1


def _what_was_written(args: argparse.Namespace) -> str:
    """The truth about the output folder after an interrupt (see pipeline.runtime.staging)."""
    out = getattr(args, "out", None)
    if out is None:
        return "nothing was written"
    staging = sys.modules.get("pipeline.runtime.staging")
    if staging is not None and Path(out) in staging.COMMITTED:
        return f"the output in {out} was complete before the interrupt"
    return (
        f"nothing in {out} was changed: any earlier output there is unchanged (this run's "
        "unfinished files were removed)"
    )


def entry() -> None:
    """The ``ecovoucher`` command: :func:`main`, then leave without tearing the interpreter down.
    A national run holds millions of geometries; freeing them one by one at exit took ~1 s after
    the work was done and written. Output streams and log handlers are flushed first; every file
    is complete (atomic renames) and every worker thread has finished by then."""
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
