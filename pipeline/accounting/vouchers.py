"""Stage 4 — accounting: standard-forest areas, static and dynamic vouchers, trade values.

One public function, :func:`account`. Formulas (Gu, Tang & Wang 2022, eq. 1–3; docs/method.md §1):

    M_t = Σ_i A_i,t · k_i                      standard-forest area (hm²)
    ΔM  = M_t − B                              static voucher (hm²); the baseline B is M_0, or with
                                               baseline.mode = protection_rate the base-year
                                               standard-forest density of the county's level
                                               (hm²/km²) × the county's area
    G_t = (GDP_t / pop_t) / national GDP per capita
    P_t = (pop_t / area_km²) / national population density
    E   = ΔM · G_t · P_t                       dynamic voucher (hm²); E < 0 demand, E > 0 supply
    Q_t = E · q_t                              trade value (yuan)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import geopandas as gpd
import numpy as np
import pandas as pd

from pipeline.errors import InputError, Problem
from pipeline.settings.coefficients import Coefficients
from pipeline.settings.config import BALANCED_TOLERANCE_HA, Config


@dataclass(frozen=True)
class Accounts:
    """The accounting stage's result. Later steps (market, Monte Carlo) make a new one with
    :meth:`joined`; none is changed in place."""

    county_vouchers: gpd.GeoDataFrame
    totals: dict[str, float]
    baseline_areas: pd.DataFrame  # county_id, class_code, area_ha: the land the baseline counts
    trades: gpd.GeoDataFrame | None = None  # the market's trades, when it was cleared

    def joined(
        self, columns: pd.DataFrame, totals: dict[str, float], **changes: object
    ) -> Accounts:
        """A new Accounts with per-county ``columns`` (indexed by county_id) added to
        county_vouchers (geometry kept last), ``totals`` added to the totals, and ``changes``
        (e.g. ``trades``) replaced."""
        cv = self.county_vouchers
        table = cv.drop(columns=cv.geometry.name).join(columns, on="county_id")
        table = gpd.GeoDataFrame(table, geometry=cv.geometry.values, crs=cv.crs)
        return replace(self, county_vouchers=table, totals={**self.totals, **totals}, **changes)


def account(
    counties: gpd.GeoDataFrame,
    class_areas: pd.DataFrame,
    socio: pd.DataFrame,
    config: Config,
    coefficients: Coefficients | Mapping[int, Coefficients],
) -> Accounts:
    """County vouchers and region totals from per-class areas and target-year statistics.
    ``coefficients``: one table for every year, or each year's (a year's class codes are those
    of its legend, and M_t takes that legend's k)."""
    base, target = config.years.base, config.years.target
    national = config.national[target]
    ids = counties["county_id"].to_numpy()
    if isinstance(coefficients, Coefficients):
        coefficients = {base: coefficients, target: coefficients}

    k = _k_of_rows(class_areas, coefficients)
    sf = _standard_forest(class_areas, k, "year").reindex(columns=[base, target])
    sf = sf.reindex(index=ids).fillna(0.0)
    baseline_areas = _baseline_areas(counties, class_areas, config)
    # the baseline land is base-year land: its codes are the base year's legend's
    k0 = baseline_areas["class_code"].map(coefficients[base].of).to_numpy(float)
    baseline = _standard_forest(baseline_areas.assign(year=0), k0, "year")
    baseline = baseline.reindex(index=ids, columns=[0]).fillna(0.0)[0].to_numpy()
    covered = class_areas.pivot_table(
        index="county_id", columns="year", values="area_ha", aggfunc="sum"
    ).reindex(index=ids, columns=[base, target])

    # 1 km² = 100 ha = 10⁶ m²
    area_km2 = counties["area_m2"].to_numpy() / 1e6
    area_ha = counties["area_m2"].to_numpy() / 1e4
    s = socio.reindex(ids)
    gdp_per_capita = s["gdp_yuan"].to_numpy() / s["population"].to_numpy()
    density = s["population"].to_numpy() / area_km2
    m0 = sf[base].to_numpy()
    mt = sf[target].to_numpy()
    static = mt - baseline
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):  # see _check_finite
        gdp_coef = gdp_per_capita / national.gdp_per_capita_yuan
        pop_coef = density / national.population_density_per_km2
        voucher = static * gdp_coef * pop_coef
        value = voucher * config.price_yuan_per_ha
    role = np.where(
        voucher < -BALANCED_TOLERANCE_HA,
        "demand",
        np.where(voucher > BALANCED_TOLERANCE_HA, "supply", "balanced"),
    )
    table = gpd.GeoDataFrame(
        {
            "county_id": ids,
            "name": counties["name"].to_numpy(),
            "province": counties["province"].to_numpy(),
            "city": counties["city"].to_numpy(),
            "area_km2": area_km2,
            "sf_base_ha": m0,
            "sf_target_ha": mt,
            "baseline_ha": baseline,
            "static_voucher_ha": static,
            "gdp_coef": gdp_coef,
            "pop_coef": pop_coef,
            "voucher_ha": voucher,
            "role": role,
            "value_yuan": value,
            "coverage_base": covered[base].fillna(0.0).to_numpy() / area_ha,
            "coverage_target": covered[target].fillna(0.0).to_numpy() / area_ha,
        },
        geometry=counties.geometry.values,
        crs=counties.crs,
    )
    _check_finite(table, config)
    demand = float(-voucher[voucher < 0].sum())
    supply = float(voucher[voucher > 0].sum())
    totals = {
        "sf_base_ha": float(m0.sum()),
        "sf_target_ha": float(mt.sum()),
        "baseline_ha": float(baseline.sum()),
        "static_voucher_ha": float(static.sum()),
        "demand_ha": demand,
        "supply_ha": supply,
        "net_ha": demand - supply,
        "demand_value_yuan": demand * config.price_yuan_per_ha,
        "supply_value_yuan": supply * config.price_yuan_per_ha,
        "n_counties": float(len(ids)),
        "n_demand": float((role == "demand").sum()),
        "n_supply": float((role == "supply").sum()),
        "n_balanced": float((role == "balanced").sum()),
    }
    bad = [k for k, v in totals.items() if not np.isfinite(v)]
    if bad:
        raise InputError(
            f"the region totals {', '.join(bad)} overflow (not finite numbers); "
            f"price_yuan_per_ha ({config.price_yuan_per_ha:g}) is too large",
            where=f"config {config.path}",
        )
    return Accounts(table, totals, baseline_areas)


def _check_finite(table: pd.DataFrame, config: Config) -> None:
    """G_t, P_t, E and Q_t must be finite numbers before anything is written: a national value
    near 0 or a price near the largest float makes them infinite or NaN (and a NaN voucher would
    be labelled 'balanced'). The first column that fails names the input to look at."""
    nat = config.national[config.years.target]
    causes = {
        "gdp_coef": f"G_t = (GDP / population) / national.{config.years.target}."
        f"gdp_per_capita_yuan ({nat.gdp_per_capita_yuan:g}): check gdp_per_capita_yuan and "
        "these counties' gdp and pop in the statistics",
        "pop_coef": f"P_t = (population / area) / national.{config.years.target}."
        f"population_density_per_km2 ({nat.population_density_per_km2:g}): check "
        "population_density_per_km2 and these counties' pop in the statistics",
        "voucher_ha": "E = ΔM · G_t · P_t overflows: check gdp_per_capita_yuan and "
        "population_density_per_km2",
        "value_yuan": f"Q_t = E · price_yuan_per_ha ({config.price_yuan_per_ha:g}) overflows: "
        "price_yuan_per_ha is too large",
    }
    for column, cause in causes.items():
        values = table[column].to_numpy(float)
        bad = ~np.isfinite(values)
        if bad.any():
            ids = table["county_id"].to_numpy()[bad]
            listing = ", ".join(str(i) for i in ids[:10]) + (" …" if len(ids) > 10 else "")
            raise InputError(
                Problem(
                    f"config {config.path}",
                    f"{column} is not a finite number for {len(ids)} counties ({listing}): {cause}",
                )
            )


def change_layer(
    changes: gpd.GeoDataFrame, coefficients: Mapping[int, Coefficients], years: tuple[int, int]
) -> gpd.GeoDataFrame:
    """The change map with ``sf_change_ha`` = area_ha · (k_to − k_from): each piece's share of
    the county's static voucher M_t − M_0 (hm² of standard forest; k by each year's legend)."""
    base, target = years
    k_from = changes["from_code"].map(coefficients[base].of).to_numpy(float)
    k_to = changes["to_code"].map(coefficients[target].of).to_numpy(float)
    out = changes.copy()
    out.insert(4, "sf_change_ha", changes["area_ha"].to_numpy() * (k_to - k_from))
    return out


def _k_of_rows(areas: pd.DataFrame, coefficients: Mapping[int, Coefficients]) -> np.ndarray:
    """k of every row (county, year, class_code) by its year's coefficients."""
    k = np.zeros(len(areas))
    years = areas["year"].to_numpy()
    for year in np.unique(years):
        rows = years == year
        table = coefficients.get(int(year))
        if table is not None:
            k[rows] = areas["class_code"].loc[rows].map(table.of).to_numpy(float)
    return k


def _standard_forest(areas: pd.DataFrame, k: np.ndarray, by: str) -> pd.DataFrame:
    """Σ_i A_i · k_i per county (rows) and ``by`` (columns), hm²."""
    weighted = areas.assign(sf=areas["area_ha"].to_numpy() * k)
    return weighted.pivot_table(index="county_id", columns=by, values="sf", aggfunc="sum")


def _baseline_areas(
    counties: gpd.GeoDataFrame, class_areas: pd.DataFrame, config: Config
) -> pd.DataFrame:
    """The class areas the baseline counts: the county's own base-year land (mode base_year), or
    its level's base-year class mix scaled to the county's area (mode protection_rate), so that
    B = Σ_i k_i · B_i = level density of standard forest (hm²/km²) × county area (km²)."""
    base = class_areas.loc[class_areas["year"] == config.years.base]
    base = base[["county_id", "class_code", "area_ha"]].reset_index(drop=True)
    if config.baseline.mode == "base_year":
        return base
    level = config.baseline.level
    groups = counties[["county_id", "area_m2"]].copy()
    groups["group"] = "all" if level == "national" else counties[level].fillna("").to_numpy()
    group_area = groups.groupby("group")["area_m2"].sum()
    mix = base.merge(groups[["county_id", "group"]], on="county_id")
    mix = mix.groupby(["group", "class_code"], as_index=False)["area_ha"].sum()
    # share of the level's area in each class, e.g. 30,000 ha forest / 100,000 ha = 0.3
    mix["share"] = mix["area_ha"] / (mix["group"].map(group_area) / 1e4)
    out = groups[["county_id", "group", "area_m2"]].merge(mix[["group", "class_code", "share"]])
    # the county's baseline land in class i: share × county area (hm² = m² / 10⁴)
    out["area_ha"] = out["share"] * out["area_m2"] / 1e4
    return out[["county_id", "class_code", "area_ha"]].sort_values(["county_id", "class_code"])
