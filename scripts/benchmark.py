#!/usr/bin/env python
"""Time `ecovoucher run` against the plain geopandas.overlay script on the same data, in one run.

Each contender runs as its own process; wall time is measured around it and peak memory is the
largest sum of resident memory over the process and all its children, sampled every 50 ms. The
two results are compared county by county (they must agree to 1e-6 relative).

    scripts/benchmark.py                       # the demo (builds it first if needed)
    scripts/benchmark.py --catalog C --config F  # your own data
    scripts/benchmark.py --workers 1 2         # ecovoucher with 1 and with 2 workers
    scripts/benchmark.py --national            # all 31 provinces, 550,000 polygons a year
    scripts/benchmark.py --national --repeat 5  # each ecovoucher setting 5 times: the median
    scripts/benchmark.py --national --tiles 4 8  # tiled runs too (memory-bounded; same numbers)
    scripts/benchmark.py --raster [...]        # raster path vs exactextract and rasterstats
                                               #   (scripts/benchmark_raster.py --help)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pyogrio

ROOT = Path(__file__).resolve().parents[1]


def measure(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, peak MiB of the process tree) of one command; raises if it fails."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    root = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            procs = [root, *root.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in procs if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr.read().decode()}")
    return wall, peak / 2**20


def _build_demo(cache: Path, provinces: str, polygons: int) -> tuple[Path, Path]:
    """Build demo data (if needed) and return a catalog and config for it."""
    code = (
        "import sys; from pathlib import Path; from pipeline.demo import build_demo_data as b; "
        "from pipeline.demo import settings_for as s; c = Path(sys.argv[1]); "
        "b(c, provinces=tuple(sys.argv[2].split(',')), polygons_per_year=int(sys.argv[3])); "
        "s(c, Path('data_catalog.yaml'), Path('configs/jingjinji.yaml'))"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(cache), provinces, str(polygons)], check=True, cwd=ROOT
    )
    return cache / "catalog.yaml", cache / "config.yaml"


def main() -> None:
    if "--raster" in sys.argv[1:]:
        import benchmark_raster

        sys.argv = [sys.argv[0], *(a for a in sys.argv[1:] if a != "--raster")]
        benchmark_raster.main()
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--catalog", type=Path, default=ROOT / "data_catalog.yaml")
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "jingjinji.yaml")
    ap.add_argument("--workers", type=int, nargs="+", default=[2], help="worker counts to time")
    ap.add_argument("--no-overlay", action="store_true", help="skip the geopandas.overlay script")
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs of each ecovoucher setting, each into a fresh folder: the table shows the "
        "median wall time (and the range) and the largest peak memory; timings on shared "
        "machines swing ±15%%. The overlay script runs once.",
    )
    ap.add_argument(
        "--tiles",
        type=int,
        nargs="+",
        default=[],
        metavar="N",
        help="also time tiled runs (--tiles N, with the last worker count) and check that their "
        "results equal the untiled run's bit for bit",
    )
    ap.add_argument(
        "--national",
        action="store_true",
        help="build and time the national demo (31 provinces, 550,000 polygons a year) in "
        ".cache/national; implies --workers 1 2",
    )
    args = ap.parse_args()
    if args.national:
        args.catalog, args.config = _build_demo(ROOT / ".cache" / "national", "all", 550_000)
        args.workers = [1, 2]

    if (
        args.catalog == ROOT / "data_catalog.yaml"
        and not (ROOT / ".cache/demo/manifest.json").exists()
    ):
        print("building the demo data first …", flush=True)
        subprocess.run(
            [sys.executable, "-c", "from pipeline.demo import build_demo_data as b; "
             "b(__import__('pathlib').Path('.cache/demo'))"],
            check=True, cwd=ROOT,
        )  # fmt: skip

    # numba compiles once per install; a first timing should not include it
    subprocess.run([sys.executable, "-m", "pipeline.runtime.kernels"], check=True, cwd=ROOT)
    tmp = Path(tempfile.mkdtemp(prefix="ecovoucher-bench-"))
    rows = []
    results = {}
    if args.repeat < 1:
        sys.exit("--repeat must be 1 or more")
    settings = [(n, []) for n in args.workers]
    settings += [(args.workers[-1], ["--tiles", str(t)]) for t in args.tiles]
    for n, extra in settings:
        walls, mems = [], []
        label = " ".join([f"ecovoucher run --workers {n}", *extra])
        for r in range(args.repeat):
            out = tmp / f"ecovoucher-{n}-{'-'.join(extra)}-{r}"
            cmd = [sys.executable, "-m", "pipeline", "-q", "run", "--catalog", str(args.catalog),
                   "--config", str(args.config), "--out", str(out), "--workers", str(n), *extra]  # fmt: skip
            wall, mem = measure(cmd)
            walls.append(wall)
            mems.append(mem)
            print(f"{label:<36} {wall:8.1f} s {mem:8.0f} MiB", flush=True)
        spread = f" (median of {len(walls)}: {min(walls):.1f}–{max(walls):.1f} s)"
        rows.append((label, float(np.median(walls)), max(mems), spread if len(walls) > 1 else ""))
        got = pyogrio.read_dataframe(out / "eco_vouchers.gpkg", layer="county_vouchers",
                                     read_geometry=False).set_index("county_id")  # fmt: skip
        if extra:  # a tiled run: the same numbers as the untiled one, bit for bit
            pd.testing.assert_frame_equal(got, results[n], check_exact=True)
            print(f"{label}: county_vouchers identical to the untiled run's", flush=True)
        else:
            results[n] = got
    if not args.no_overlay:
        csv = tmp / "overlay.csv"
        cmd = [sys.executable, str(ROOT / "scripts" / "overlay_baseline.py"), "--catalog",
               str(args.catalog), "--config", str(args.config), "--out", str(csv)]  # fmt: skip
        wall, mem = measure(cmd)
        rows.append(("geopandas.overlay + groupby", wall, mem, ""))
        print(f"{rows[-1][0]:<36} {wall:8.1f} s {mem:8.0f} MiB", flush=True)
        ref = pd.read_csv(csv, dtype={"county_id": str}).set_index("county_id")
        ours = results[args.workers[-1]].loc[ref.index]
        cols = ["sf_base_ha", "sf_target_ha", "voucher_ha", "value_yuan"]
        a, b = ours[cols].to_numpy(), ref[cols].to_numpy()
        # relative where the value is not ~0; an unchanged county is exactly 0 here but carries
        # ~1e-11 ha of rounding noise in the overlay, so absolute there
        big = np.abs(b) > 1e-3
        rel = np.max(np.abs(a - b)[big] / np.abs(b[big])) if big.any() else 0.0
        print(f"max relative difference ecovoucher vs overlay: {rel:.2e} (values > 0.001), max "
              f"absolute difference elsewhere: {np.max(np.abs(a - b)[~big], initial=0):.2e}")  # fmt: skip

    print("\n| command | wall time | peak memory |\n|---|---:|---:|")
    for name, wall, mem, spread in rows:
        print(f"| {name} | {wall:.1f} s{spread} | {mem:,.0f} MiB |")
    if not args.no_overlay:
        best = min(
            w for name, w, _, _ in rows if name.startswith("ecovoucher") and "tiles" not in name
        )
        print(f"\nspeed-up over geopandas.overlay: {rows[-1][1] / best:.1f}×")


if __name__ == "__main__":
    main()
