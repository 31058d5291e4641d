"""Stage 4 (accounting) — the voucher market: counties trade their dynamic vouchers E (docs/method.md §1.7).

One public function, :func:`clear_market`, configured by :class:`MarketConfig` (the ``market:``
section of the config). A county with E < 0 must buy |E| hm² of standard forest (a *buyer*); a
county with E > 0 may sell E hm² (a *seller*); a county with |E| ≤ ``BALANCED_TOLERANCE_HA`` or a
non-finite E takes no part.

**Price.** One uniform price for every trade: q = max(floor price, market price), or the floor
price when no market price is configured. value_yuan = volume_ha × q.

**Levels.** Following the farmland rule the paper builds on, vouchers are balanced within the city
first, then within the province, then across the whole study area (``levels``, default
``[city, province, region]``; a subset in that order is allowed, e.g. ``[province, region]`` or
``[city, province]`` with no trade across provinces). At the ``city`` level two counties may trade
only if they share province *and* city name; at ``province`` only if they share the province; at
``region`` any two counties of the input may trade. A county whose province (or, at the city level,
province or city) is missing has no partner at that level and waits for the next one. Every level
is cleared completely before the next one starts, so all within-city trades come before any
cross-city trade, and cross-province trades come last.

**Allocation rule inside a level** (deterministic; independent of the row order of the input):

1. Buyers are served one at a time in a fixed priority order: largest |E| first (the county's whole
   demand, not what is left of it), ties broken by ascending ``county_id`` (text order). The same
   order is used at every level; buyers of all groups of a level share it.
2. A buyer whose demand is not yet covered buys from the sellers of its own group (same city,
   province or study area, by level) that still have vouchers, nearest first: distance between the
   polygon centroids in the CRS of ``county_vouchers`` (equal-area metres), ties broken by ascending
   ``county_id``.
3. Each purchase is min(buyer's remaining demand, seller's remaining supply, remaining cap). The
   buyer moves on to the next-nearest seller until its demand is covered or its group has no
   supply left; then the next buyer is served.
4. The annual cap (``annual_cap_ha``) limits the total volume of all trades of all levels. Once it
   is used up, trading stops everywhere: the cap is consumed by within-city trades first, and within
   a level by the buyers in the priority order of step 1.

Without a cap each group of a level trades exactly min(its remaining demand, its remaining supply),
whatever the order; the order decides only who trades with whom. ``uncapped_traded_ha`` is that
volume summed over the levels, and the cap binds (``cap_binding`` = 1) when it is smaller than the
uncapped volume. Per county: bought_ha + unmet_ha = |E| for buyers, sold_ha + unsold_ha = E for
sellers (residues below ``BALANCED_TOLERANCE_HA`` are rounded to zero).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from pipeline.errors import InputError, Problem
from pipeline.settings.config import BALANCED_TOLERANCE_HA, LEVELS, MarketConfig

__all__ = ["MarketResult", "clear_market"]

log = logging.getLogger(__name__)

#: Columns of the ``trades`` layer, in order (plus ``geometry``).
TRADE_COLUMNS: tuple[str, ...] = (
    "seller_id", "seller_name", "buyer_id", "buyer_name", "volume_ha",
    "price_yuan_per_ha", "value_yuan", "level", "distance_km",
)  # fmt: skip
#: Columns :func:`clear_market` adds per county.
COUNTY_COLUMNS: tuple[str, ...] = ("bought_ha", "sold_ha", "unmet_ha", "unsold_ha")
_REQUIRED = ("county_id", "name", "province", "city", "voucher_ha")


@dataclass
class MarketResult:
    """``trades``: one LineString (seller centroid → buyer centroid) per trade, columns
    :data:`TRADE_COLUMNS`, in the order they were made; ``county_columns``: indexed by county_id in
    the order of the input, columns :data:`COUNTY_COLUMNS`; ``totals``: region totals (floats)."""

    trades: gpd.GeoDataFrame
    county_columns: pd.DataFrame
    totals: dict[str, float]


def clear_market(county_vouchers: gpd.GeoDataFrame, market: MarketConfig) -> MarketResult:
    """Match buyers (E < 0) and sellers (E > 0) level by level; see the module docstring."""
    _check(county_vouchers)
    tol = BALANCED_TOLERANCE_HA
    ids = county_vouchers["county_id"].astype(str).to_numpy()
    names = county_vouchers["name"].to_numpy()
    e = county_vouchers["voucher_ha"].to_numpy(dtype=float)
    finite = np.isfinite(e)
    demand = np.where(finite & (e < -tol), -e, 0.0)
    supply = np.where(finite & (e > tol), e, 0.0)
    need = demand.copy()  # what each buyer still has to buy
    have = supply.copy()  # what each seller can still sell
    n = len(ids)

    rank = np.empty(n, dtype=np.int64)  # position of each county in county_id order
    rank[np.argsort(ids, kind="stable")] = np.arange(n)
    centroids = county_vouchers.geometry.centroid if n else gpd.GeoSeries([])
    x = centroids.x.to_numpy(dtype=float) if n else np.zeros(0)
    y = centroids.y.to_numpy(dtype=float) if n else np.zeros(0)
    _check_geometry(ids, x, y, demand, supply)
    if county_vouchers.crs is not None and county_vouchers.crs.is_geographic:
        log.warning("market: county_vouchers is in a geographic CRS; distances are in degrees")

    buyers = np.flatnonzero(demand > 0)
    buyers = buyers[np.lexsort((rank[buyers], -demand[buyers]))]  # largest |E|, then county_id
    is_seller = supply > 0
    price = market.price_yuan_per_ha
    cap = market.annual_cap_ha
    cap_left = math.inf if cap is None else float(cap)

    t_seller: list[int] = []
    t_buyer: list[int] = []
    t_volume: list[float] = []
    t_level: list[str] = []
    t_dist: list[float] = []
    for level in market.levels:
        if cap_left <= 0:
            break
        groups = _groups(county_vouchers, level)
        sellers_of = _members(np.flatnonzero(is_seller), groups)
        for b in buyers:
            if need[b] <= 0:
                continue
            if cap_left <= 0:
                break
            cand = sellers_of.get(int(groups[b]))
            if cand is None:
                continue
            cand = cand[have[cand] > 0]
            if not len(cand):
                continue
            dist = np.hypot(x[cand] - x[b], y[cand] - y[b])
            order = np.lexsort((rank[cand], dist))
            for s, d in zip(cand[order], dist[order]):
                volume = min(need[b], have[s], cap_left)
                t_seller.append(s)
                t_buyer.append(b)
                t_volume.append(volume)
                t_level.append(level)
                t_dist.append(d)
                # a residue below the tolerance (float rounding of the subtraction) is zero
                need[b] = _snap(need[b] - volume, tol)
                have[s] = _snap(have[s] - volume, tol)
                cap_left = _snap(cap_left - volume, tol)
                if need[b] <= 0 or cap_left <= 0:
                    break

    s_idx = np.asarray(t_seller, dtype=np.int64)
    b_idx = np.asarray(t_buyer, dtype=np.int64)
    volume = np.asarray(t_volume, dtype=float)
    pts = np.column_stack([x, y])
    lines = shapely.linestrings(np.stack([pts[s_idx], pts[b_idx]], axis=1)) if len(s_idx) else []
    trades = gpd.GeoDataFrame(
        {
            "seller_id": ids[s_idx],
            "seller_name": names[s_idx],
            "buyer_id": ids[b_idx],
            "buyer_name": names[b_idx],
            "volume_ha": volume,
            "price_yuan_per_ha": np.full(len(volume), float(price)),
            "value_yuan": volume * price,
            "level": np.asarray(t_level, dtype=object),
            # 1 km = 1000 m
            "distance_km": np.asarray(t_dist, dtype=float) / 1000.0,
        },
        geometry=gpd.GeoSeries(lines, crs=county_vouchers.crs),
        crs=county_vouchers.crs,
    )

    nan_if_absent = np.where(finite, 1.0, np.nan)
    county_columns = pd.DataFrame(
        {
            "bought_ha": demand - need,
            "sold_ha": supply - have,
            "unmet_ha": need * nan_if_absent,
            "unsold_ha": have * nan_if_absent,
        },
        index=pd.Index(ids, name="county_id"),
    )

    traded = math.fsum(t_volume)
    uncapped = _uncapped_volume(county_vouchers, market.levels, demand, supply)
    by_level = {lv: math.fsum(v for v, l2 in zip(t_volume, t_level) if l2 == lv) for lv in LEVELS}
    totals: dict[str, float] = {
        "traded_ha": traded,
        "traded_value_yuan": traded * price,
        "price_yuan_per_ha": float(price),
        "floor_price_yuan_per_ha": float(market.floor_price_yuan_per_ha),
        "market_price_yuan_per_ha": _or_nan(market.market_price_yuan_per_ha),
        "annual_cap_ha": _or_nan(cap),
        "cap_binding": float(cap is not None and uncapped > cap * (1 + 1e-12) + tol),
        "uncapped_traded_ha": uncapped,
        "unmet_demand_ha": float(need.sum()),
        "unsold_supply_ha": float(have.sum()),
        **{f"traded_{lv}_ha": by_level[lv] for lv in LEVELS},
        "n_trades": float(len(t_volume)),
        "n_buyers_unmet": float((need > 0).sum()),
    }
    return MarketResult(trades=trades, county_columns=county_columns, totals=totals)


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _snap(value: float, tol: float) -> float:
    return 0.0 if value <= tol else value


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _groups(county_vouchers: pd.DataFrame, level: str) -> np.ndarray:
    """An integer group code per county for ``level``; a county with a missing key is alone."""
    n = len(county_vouchers)
    if level == "region":
        return np.zeros(n, dtype=np.int64)
    province = county_vouchers["province"]
    missing = province.isna().to_numpy().copy()
    key = province.astype(str)
    if level == "city":
        city = county_vouchers["city"]
        missing = missing | city.isna().to_numpy()
        key = key + "\x1f" + city.astype(str)  # the same city name in two provinces is two cities
    key = key.to_numpy(dtype=object)
    ids = county_vouchers["county_id"].astype(str).to_numpy()
    key[missing] = [f"\x00alone\x1f{i}" for i in ids[missing]]
    codes, _ = pd.factorize(key)
    return codes.astype(np.int64)


def _members(idx: np.ndarray, groups: np.ndarray) -> dict[int, np.ndarray]:
    """The counties ``idx`` split by group code: {group: their indices, ascending}."""
    g = groups[idx]
    order = np.argsort(g, kind="stable")
    idx, g = idx[order], g[order]
    uniq, starts = np.unique(g, return_index=True)
    return dict(zip(uniq.tolist(), np.split(idx, starts[1:])))


def _uncapped_volume(
    county_vouchers: pd.DataFrame, levels: tuple[str, ...], demand: np.ndarray, supply: np.ndarray
) -> float:
    """Volume an uncapped market trades: Σ over levels and groups of min(demand, supply) left.

    Groups are nested (city ⊂ province ⊂ region), so what a group has left can be kept on any of
    its counties; it is spread in proportion, which keeps it inside the group."""
    d, s = demand.astype(float), supply.astype(float)
    total = 0.0
    for level in levels:
        g = _groups(county_vouchers, level)
        dg = np.bincount(g, weights=d)
        sg = np.bincount(g, weights=s)
        t = np.minimum(dg, sg)
        total += math.fsum(t)
        with np.errstate(invalid="ignore", divide="ignore"):
            d = d * np.where(dg > 0, (dg - t) / dg, 0.0)[g]
            s = s * np.where(sg > 0, (sg - t) / sg, 0.0)[g]
    return total


def _check(county_vouchers: pd.DataFrame) -> None:
    problems = []
    missing = [c for c in _REQUIRED if c not in county_vouchers.columns]
    if missing:
        problems.append(
            Problem(
                "county_vouchers",
                f"columns {missing} are missing; the market needs {list(_REQUIRED)}",
            )
        )
    elif not isinstance(county_vouchers, gpd.GeoDataFrame):
        problems.append(Problem("county_vouchers", "must be a GeoDataFrame with county polygons"))
    else:
        ids = county_vouchers["county_id"].astype(str)
        dup = sorted(ids[ids.duplicated()].unique())
        if dup:
            problems.append(
                Problem("county_vouchers, field 'county_id'", f"county ids {dup} occur twice")
            )
    if problems:
        raise InputError(problems)


def _check_geometry(
    ids: np.ndarray, x: np.ndarray, y: np.ndarray, demand: np.ndarray, supply: np.ndarray
) -> None:
    bad = ((demand > 0) | (supply > 0)) & ~(np.isfinite(x) & np.isfinite(y))
    if bad.any():
        raise InputError(
            f"counties {sorted(ids[bad])[:20]} buy or sell vouchers but have no polygon (empty or "
            "missing geometry), so the nearest seller cannot be found; fix their geometry",
            where="county_vouchers, geometry",
        )
