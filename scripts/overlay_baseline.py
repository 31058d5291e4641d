#!/usr/bin/env python
"""The plain way: geopandas.overlay + groupby, doing the same accounting as `ecovoucher run`.

Independent of the `pipeline` package on purpose (it reads the catalog, config and coefficient
YAML itself), so that it serves both as the speed baseline of scripts/benchmark.py and as an
independent check of the numbers. Writes a CSV of county vouchers.

    python scripts/overlay_baseline.py --catalog data_catalog.yaml --config configs/jingjinji.yaml \
        --out /tmp/overlay.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import geopandas as gpd
import pandas as pd
import yaml


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--catalog", type=Path, required=True)
    ap.add_argument("--config", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    cat = yaml.safe_load(args.catalog.read_text("utf-8"))["datasets"]
    cfg = yaml.safe_load(args.config.read_text("utf-8"))
    here, cfg_dir = args.catalog.parent, args.config.parent
    crs = cfg.get("equal_area_crs")
    base, target = cfg["years"]["base"], cfg["years"]["target"]
    coef_path = cfg_dir / cfg.get("coefficients", "coefficients/gu2022.yaml")
    k = {int(c): e["k"] for c, e in yaml.safe_load(coef_path.read_text("utf-8"))["classes"].items()}

    c = cat["counties"]
    counties = gpd.read_file(here / c["path"], layer=c.get("layer"), encoding=c.get("encoding"))
    counties = counties.rename(columns={c["id_field"]: "county_id", c["name_field"]: "name"})
    counties["county_id"] = counties["county_id"].astype(str)
    provinces = (cfg.get("study_area") or {}).get("provinces")
    if provinces:
        counties = counties[counties[c["province_field"]].isin(provinces)]
    counties = counties[["county_id", "name", "geometry"]].to_crs(crs)
    counties["area_km2"] = counties.area / 1e6

    sf = {}
    for year in (base, target):
        e = cat["landuse"][year]
        lu = gpd.read_file(here / e["path"], encoding=e.get("encoding"))
        lu = lu[[e.get("code_field", "gridcode"), "geometry"]].to_crs(crs)
        lu["k"] = lu[e.get("code_field", "gridcode")].map(lambda v: k.get(int(v), 0.0))
        pieces = gpd.overlay(counties[["county_id", "geometry"]], lu, how="intersection")
        pieces["sf"] = pieces.area / 1e4 * pieces["k"]
        sf[year] = pieces.groupby("county_id")["sf"].sum()

    s = cat["socioeconomic"]
    socio = pd.read_csv(here / s["path"], dtype={s.get("id_field", "code"): str})
    socio = socio[socio[s.get("year_field", "year")] == target].set_index(s.get("id_field", "code"))
    gdp = socio[s.get("gdp_field", "gdp")] * s.get("gdp_scale", 1)
    pop = socio[s.get("population_field", "pop")] * s.get("population_scale", 1)
    nat = cfg["national"][target]

    t = counties.drop(columns="geometry").set_index("county_id")
    t["sf_base_ha"] = sf[base].reindex(t.index).fillna(0.0)
    t["sf_target_ha"] = sf[target].reindex(t.index).fillna(0.0)
    t["static_voucher_ha"] = t["sf_target_ha"] - t["sf_base_ha"]
    t["gdp_coef"] = (gdp / pop).reindex(t.index) / nat["gdp_per_capita_yuan"]
    t["pop_coef"] = (pop.reindex(t.index) / t["area_km2"]) / nat["population_density_per_km2"]
    t["voucher_ha"] = t["static_voucher_ha"] * t["gdp_coef"] * t["pop_coef"]
    t["value_yuan"] = t["voucher_ha"] * cfg["price_yuan_per_ha"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    t.sort_index().to_csv(args.out)


if __name__ == "__main__":
    main()
