"""Uncertainty of the vouchers: Monte Carlo over the coefficients, the national values and the price.

One public function, :func:`monte_carlo`, configured by :class:`UncertaintyConfig` (the
``uncertainty:`` section of the config). Each draw d takes

* a standard-forest coefficient k_i,d for every class i that has a range (``coefficient_spread``
  for every class of the coefficient tables, ``coefficients`` for explicit ranges per code); codes
  whose k was taken from the same row of the paper's Table 1 share one uniform number
  (:mod:`pipeline.accounting.draws`);
* national reference values (g_d, p_d): one of ``national.alternatives`` with equal probability
  (e.g. the initial and the revised statistics; none given: the config's national values), each of
  the two then multiplied independently by a factor in [1 − spread, 1 + spread];
* a price q_d (``price``; none given: the config's price).

and recomputes, for every county c (docs/method.md §1.7),

    ΔM_c,d = Σ_j A_j,c,t k_j,d − Σ_i B_i,c k_i,d                 the static voucher with the drawn k
           = ΔM_c + Σ_j A_j,c,t (k_j,d − k_j) − Σ_i B_i,c (k_i,d − k_i)
    E_c,d  = ΔM_c,d · G_c · P_c · (g / g_d) · (p / p_d)         the county's own GDP per capita
                                                               (G_c·g) and density (P_c·p) are kept
    Q_c,d  = E_c,d · q_d

where ΔM_c, G_c, P_c are ``static_voucher_ha``, ``gdp_coef``, ``pop_coef`` of ``county_vouchers``,
(g, p) the ``national`` argument, A_j,c,t the county's target-year class areas (codes j of the
target year's legend) and B_i,c its baseline class areas (codes i of the base year's legend: the
base-year class areas unless ``baseline_areas`` is given). With one legend for both years the two
sums run over the same codes: ΔM_c + Σ_i (A_i,c,t − B_i,c)(k_i,d − k_i). Written as the
deterministic value plus a perturbation, a zero spread gives back ``voucher_ha`` bit for bit: the
percentiles collapse to it and ``p_demand`` is 0 or 1.

Ranges: ``uniform`` on [low, high], or ``triangular`` on [low, high] peaking at ``mode`` (default:
the deterministic value). Both come from the same uniform numbers (inverse CDF), drawn all at once
from ``np.random.default_rng(seed)`` in a fixed layout — one row per draw, columns: one per draw
key of the coefficients (the Table 1 rows in ascending order, then the codes without a row by
legend and code; with one RESDC legend simply the codes in ascending order), then alternative,
GDP factor, density factor, price — so a seed gives the same draws whatever the data, the block
size or the machine.

Outputs per county: ``voucher_ha_p05, voucher_ha_p50, voucher_ha_p95`` (percentiles of E over the
draws, numpy's linear interpolation), ``p_demand`` (share of draws with E < −tolerance, the
``demand`` role), and ``value_yuan_p05/p50/p95``. Region totals per draw: demand = Σ|E| over E < 0,
supply = Σ E over E > 0, net = demand − supply (hm²), and the same in yuan (× q_d); their 5th, 50th
and 95th percentiles. Computed in blocks of counties × all draws, a block per thread at a time,
so memory stays under ``memory_mb`` while the percentiles are exact.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.accounting.draws import CoefficientDraws, checked_bounds, inverse_cdf, plan_draws
from pipeline.errors import InputError, Problem
from pipeline.settings.coefficients import Coefficients
from pipeline.settings.config import BALANCED_TOLERANCE_HA, UncertaintyConfig
from pipeline.settings.legends import Code

__all__ = ["UncertaintyResult", "monte_carlo"]

#: Percentiles reported, and the suffix of their column names.
PERCENTILES: dict[str, float] = {"p05": 5.0, "p50": 50.0, "p95": 95.0}
#: Per-county columns :func:`monte_carlo` returns.
COUNTY_COLUMNS: tuple[str, ...] = (
    "voucher_ha_p05", "voucher_ha_p50", "voucher_ha_p95", "p_demand",
    "value_yuan_p05", "value_yuan_p50", "value_yuan_p95",
)  # fmt: skip
_REQUIRED = ("county_id", "static_voucher_ha", "gdp_coef", "pop_coef", "voucher_ha")


@dataclass
class UncertaintyResult:
    """``county_columns``: indexed by county_id in the order of ``county_vouchers``, columns
    :data:`COUNTY_COLUMNS`; ``totals``: region-total percentiles (floats, keys such as
    ``demand_ha_p05``); ``region_draws``: per draw the drawn national values and price and the
    region totals (columns draw, gdp_per_capita_yuan, population_density_per_km2,
    price_yuan_per_ha, demand_ha, supply_ha, net_ha)."""

    county_columns: pd.DataFrame
    totals: dict[str, float]
    region_draws: pd.DataFrame


def monte_carlo(
    class_areas: pd.DataFrame,
    county_vouchers: pd.DataFrame,
    k: Mapping[Code, float] | Coefficients | tuple[Coefficients, Coefficients],
    national: tuple[float, float],
    price: float,
    cfg: UncertaintyConfig,
    *,
    years: tuple[int, int] | None = None,
    baseline_areas: pd.DataFrame | None = None,
    threads: int = 1,
) -> UncertaintyResult:
    """Percentiles of each county's voucher E and of the region totals over ``cfg.draws`` draws.

    ``class_areas``: county_id, year, class_code, area_ha (base and target year: the two years
    present, or ``years=(base, target)``). ``k``: the deterministic coefficient per code (absent:
    0) of one legend, or its coefficient table, or the (base, target) years' tables (their legends
    may differ). ``national``: (GDP per capita, population density) of the target year used for
    ``county_vouchers``. ``price``: q in yuan per hm². ``baseline_areas`` (county_id, class_code,
    area_ha): the class areas whose k-weighted sum is each county's baseline, when the baseline is
    not the base year's ecological land (protection-rate mode); default: the base-year rows.
    ``threads``: blocks of counties computed at once (the results do not depend on it).
    """
    ids, static, gdp, pop, voucher = _prepare(county_vouchers)
    base, target = _years(class_areas, years)
    draws = cfg.draws
    rng = np.random.default_rng(cfg.seed)

    # ---- the draws: one uniform matrix, columns in a fixed layout (see draws.py) ----------
    plan = plan_draws(k, cfg)
    n_codes = plan.n_keys
    u = rng.random((draws, n_codes + 4))
    dk = plan.perturbations(u, cfg)

    g0, p0 = float(national[0]), float(national[1])
    alts = cfg.national.alternatives
    if alts:
        pick = np.minimum((u[:, n_codes] * len(alts)).astype(np.int64), len(alts) - 1)
        g_alt = np.array([a.gdp_per_capita_yuan for a in alts])[pick]
        p_alt = np.array([a.population_density_per_km2 for a in alts])[pick]
    else:
        g_alt, p_alt = np.full(draws, g0), np.full(draws, p0)
    s = cfg.national.spread
    g_d = g_alt * inverse_cdf(u[:, n_codes + 1], 1 - s, 1 + s, 1.0, cfg.distribution)
    p_d = p_alt * inverse_cdf(u[:, n_codes + 2], 1 - s, 1 + s, 1.0, cfg.distribution)
    # county GDP per capita = G·g and density = P·p are fixed, so G_d = G·g/g_d, P_d = P·p/p_d
    factor = (g0 / g_d) * (p0 / p_d)  # exactly 1.0 when nothing national varies
    if cfg.price is None:
        q_d = np.full(draws, float(price))
    else:
        dist = cfg.price.distribution or cfg.distribution
        low, high, peak = checked_bounds(cfg.price, float(price), dist, "uncertainty, price")
        q_d = inverse_cdf(u[:, n_codes + 3], low, high, peak, dist)

    # ---- county × class area differences, only for classes whose k varies ------------------
    varies = np.flatnonzero(np.any(dk != 0, axis=0))
    delta = _area_difference(class_areas, baseline_areas, ids, (base, target), plan, static)
    delta, dk = delta[:, varies], dk[:, varies]

    # ---- blocks of counties × all draws, ``threads`` at a time ---------------------------------
    n = len(ids)
    threads = max(1, threads)
    # the blocks in flight share memory_mb: e, its where() temporaries, the values e · q
    block = max(1, int(cfg.memory_mb * 2**20 // (draws * 8 * 3 * threads)))
    out = {c: np.full(n, np.nan) for c in COUNTY_COLUMNS}
    dk_t = np.ascontiguousarray(dk.T)
    q = None if cfg.price is None else q_d

    def one_block(start: int) -> tuple[np.ndarray, np.ndarray]:
        sl = slice(start, min(start + block, n))
        return _county_block(
            sl, static, delta, dk_t, gdp, pop, factor, voucher, q, float(price), out
        )

    starts = range(0, n, block)
    if threads > 1 and len(starts) > 1:  # numpy releases the GIL in the heavy parts
        with ThreadPoolExecutor(max_workers=threads) as pool:
            sums = list(pool.map(one_block, starts))
    else:
        sums = [one_block(s) for s in starts]
    # added in block order: the totals do not depend on which thread finished first
    demand_d = np.zeros(draws)
    supply_d = np.zeros(draws)
    for block_demand, block_supply in sums:
        demand_d += block_demand
        supply_d += block_supply

    county_columns = pd.DataFrame(out, index=pd.Index(ids, name="county_id"))
    region = pd.DataFrame(
        {
            "draw": np.arange(draws),
            "gdp_per_capita_yuan": g_d,
            "population_density_per_km2": p_d,
            "price_yuan_per_ha": q_d,
            "demand_ha": demand_d,
            "supply_ha": supply_d,
            "net_ha": demand_d - supply_d,
        }
    )
    totals: dict[str, float] = {
        "uncertainty_draws": float(draws),
        "uncertainty_seed": float(cfg.seed),
    }
    series = {
        "demand_ha": demand_d,
        "supply_ha": supply_d,
        "net_ha": demand_d - supply_d,
        "demand_value_yuan": demand_d * q_d,
        "supply_value_yuan": supply_d * q_d,
        "net_value_yuan": (demand_d - supply_d) * q_d,
    }
    pct = list(PERCENTILES.values())
    for key, values in series.items():
        for (name, _), v in zip(PERCENTILES.items(), np.percentile(values, pct)):
            totals[f"{key}_{name}"] = float(v)
    return UncertaintyResult(county_columns=county_columns, totals=totals, region_draws=region)


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _county_block(
    sl: slice,
    static: np.ndarray,
    delta: np.ndarray,
    dk_t: np.ndarray,
    gdp: np.ndarray,
    pop: np.ndarray,
    factor: np.ndarray,
    voucher: np.ndarray,
    q_d: np.ndarray | None,
    price: float,
    out: dict[str, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """E of the counties ``sl`` in every draw: their percentiles and p_demand into ``out``;
    returns the block's demand and supply per draw. ``q_d`` None: one price for all draws."""
    e = np.repeat(static[sl, None], len(factor), axis=1)
    if len(dk_t):
        e += delta[sl] @ dk_t
    # the same order of products as accounting: (ΔM · G) · P, then the national factor
    e *= gdp[sl, None]
    e *= pop[sl, None]
    e *= factor[None, :]
    demand = -np.where(e < 0, e, 0.0).sum(axis=0)
    supply = np.where(e > 0, e, 0.0).sum(axis=0)
    pct = list(PERCENTILES.values())
    ok = np.isfinite(voucher[sl])
    out["p_demand"][sl] = np.where(ok, (e < -BALANCED_TOLERANCE_HA).mean(axis=1), np.nan)
    # the values (E · q per draw) before E's percentiles, which may then reorder e in place
    # (overwrite_input: no copy of the block; the percentiles are the same)
    value = None if q_d is None else e * q_d[None, :]
    for (name, _), v in zip(
        PERCENTILES.items(), np.percentile(e, pct, axis=1, overwrite_input=True)
    ):
        out[f"voucher_ha_{name}"][sl] = v
    if value is None:  # one price for all draws: Q's percentiles are E's times q
        for name in PERCENTILES:
            out[f"value_yuan_{name}"][sl] = out[f"voucher_ha_{name}"][sl] * price
        return demand, supply
    for (name, _), v in zip(
        PERCENTILES.items(), np.percentile(value, pct, axis=1, overwrite_input=True)
    ):
        out[f"value_yuan_{name}"][sl] = v
    return demand, supply


def _prepare(county_vouchers: pd.DataFrame) -> tuple[np.ndarray, ...]:
    missing = [c for c in _REQUIRED if c not in county_vouchers.columns]
    if missing:
        raise InputError(
            f"columns {missing} are missing; the Monte Carlo needs {list(_REQUIRED)}",
            where="county_vouchers",
        )
    ids = county_vouchers["county_id"].astype(str).to_numpy()
    dup = sorted(set(ids[pd.Series(ids).duplicated().to_numpy()]))
    if dup:
        raise InputError(
            f"county ids {dup} occur twice", where="county_vouchers, field 'county_id'"
        )
    cols = [county_vouchers[c].to_numpy(dtype=float) for c in _REQUIRED[1:]]
    static, gdp, pop, voucher = cols
    # the zero-spread result is bit-exact only if voucher_ha was made as (ΔM · G) · P
    recomputed = static * gdp * pop
    bad = np.isfinite(voucher) & ~np.isclose(recomputed, voucher, rtol=1e-9, atol=1e-9)
    if bad.any():
        raise InputError(
            f"voucher_ha ≠ static_voucher_ha × gdp_coef × pop_coef for counties "
            f"{sorted(ids[bad])[:20]}; the Monte Carlo needs the accounting's own columns",
            where="county_vouchers",
        )
    return ids, static, gdp, pop, voucher


def _years(class_areas: pd.DataFrame, years: tuple[int, int] | None) -> tuple[int, int]:
    missing = [c for c in ("county_id", "year", "class_code", "area_ha") if c not in class_areas]
    if missing:
        raise InputError(f"columns {missing} are missing", where="class_areas")
    present = sorted(int(y) for y in pd.unique(class_areas["year"]))
    if years is not None:
        base, target = int(years[0]), int(years[1])
        absent = [y for y in (base, target) if y not in present]
        if absent:
            raise InputError(
                f"no rows for years {absent} (present: {present})", where="class_areas"
            )
        return base, target
    if len(present) != 2:
        raise InputError(
            f"holds the years {present}; with other than two years, pass years=(base, target)",
            where="class_areas",
        )
    return present[0], present[1]


def _area_matrix(rows: pd.DataFrame, ids: np.ndarray, codes: list[Code], text: bool) -> np.ndarray:
    """county × code matrix of area_ha (0 where absent), rows in ``ids`` order."""
    m = rows.assign(
        county_id=rows["county_id"].astype(str),
        class_code=rows["class_code"].astype(str if text else int),
    )
    m = m.pivot_table(index="county_id", columns="class_code", values="area_ha", aggfunc="sum")
    return m.reindex(index=ids, columns=codes).fillna(0.0).to_numpy(dtype=float)


def _area_difference(
    class_areas: pd.DataFrame,
    baseline_areas: pd.DataFrame | None,
    ids: np.ndarray,
    years: tuple[int, int],
    plan: CoefficientDraws,
    static: np.ndarray,
) -> np.ndarray:
    """The county × column matrix whose product with k is ΔM: A_t − B per code (one legend), or
    −B per base-legend code then A_t per target-legend code (two legends); checks it against
    static_voucher_ha."""
    base, target = years
    last = len(plan.sides) - 1  # the target year's side (0 with one legend)
    at = _area_matrix(
        class_areas[class_areas["year"] == target], ids, plan.codes(last), plan.text(last)
    )
    if baseline_areas is None:
        base_rows = class_areas[class_areas["year"] == base]
        where = f"class_areas (base year {base})"
    else:
        missing = [c for c in ("county_id", "class_code", "area_ha") if c not in baseline_areas]
        if missing:
            raise InputError(f"columns {missing} are missing", where="baseline_areas")
        base_rows = baseline_areas
        where = "baseline_areas"
    b = _area_matrix(base_rows, ids, plan.codes(0), plan.text(0))
    delta = at - b if last == 0 else np.hstack([-b, at])
    recomputed = delta @ plan.k0
    bad = np.isfinite(static) & ~np.isclose(recomputed, static, rtol=1e-9, atol=1e-6)
    if bad.any():
        some = sorted(ids[bad])[:20]
        raise InputError(
            [
                Problem(
                    where,
                    f"Σ (target − baseline area) × k differs from static_voucher_ha for counties "
                    f"{some} (e.g. {recomputed[bad][0]:.6g} vs {static[bad][0]:.6g}); pass the "
                    "class areas and coefficients the accounting used, and baseline_areas when "
                    "the baseline is not the base year's land",
                )
            ]
        )
    return delta
