"""The accounting stage as the run calls it: the county vouchers (:func:`account_counties`), the
market of a ``market:`` section (:func:`add_market`) and the Monte Carlo of an ``uncertainty:``
section (:func:`add_uncertainty`). Each returns a new :class:`~pipeline.accounting.vouchers.Accounts`
(the run draws the maps, which need only the county table, while the Monte Carlo runs)."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import geopandas as gpd
import pandas as pd

from pipeline.accounting.market import COUNTY_COLUMNS, clear_market
from pipeline.accounting.uncertainty import monte_carlo
from pipeline.accounting.vouchers import Accounts, account
from pipeline.settings.coefficients import Coefficients
from pipeline.settings.config import Config, MarketConfig

__all__ = ["COVERAGE_WARNING", "account_counties", "add_market", "add_uncertainty"]

log = logging.getLogger(__name__)

#: land-use coverage of a county below this share is warned about
COVERAGE_WARNING = 0.99


def account_counties(
    counties: gpd.GeoDataFrame,
    class_areas: pd.DataFrame,
    socio: pd.DataFrame,
    config: Config,
    coefficients: Coefficients | Mapping[int, Coefficients],
) -> Accounts:
    """:func:`~pipeline.accounting.vouchers.account`, warning about counties the land use covers
    less than :data:`COVERAGE_WARNING` of."""
    accounts = account(counties, class_areas, socio, config, coefficients)
    _warn_coverage(accounts, config)
    return accounts


def add_market(accounts: Accounts, market: MarketConfig) -> Accounts:
    """:func:`~pipeline.accounting.market.clear_market`: its per-county columns and totals joined
    to ``accounts``, its trades kept."""
    cleared = clear_market(accounts.county_vouchers, market)
    columns = cleared.county_columns[list(COUNTY_COLUMNS)]
    return accounts.joined(columns, cleared.totals, trades=cleared.trades)


def add_uncertainty(
    accounts: Accounts,
    class_areas: pd.DataFrame,
    config: Config,
    coefficients: Mapping[int, Coefficients],
    threads: int = 1,
) -> Accounts:
    """The Monte Carlo of the config's ``uncertainty:`` section joined to ``accounts`` (the
    accounts themselves when there is none). ``threads``: for the blocks of draws."""
    if config.uncertainty is None:
        return accounts
    nat = config.national[config.years.target]
    mc = monte_carlo(
        class_areas,
        accounts.county_vouchers,
        (coefficients[config.years.base], coefficients[config.years.target]),
        (nat.gdp_per_capita_yuan, nat.population_density_per_km2),
        config.price_yuan_per_ha,
        config.uncertainty,
        years=(config.years.base, config.years.target),
        baseline_areas=accounts.baseline_areas,
        threads=threads,
    )
    return accounts.joined(mc.county_columns, mc.totals)


def _warn_coverage(accounts: Accounts, config: Config) -> None:
    t = accounts.county_vouchers
    for col, year in (
        ("coverage_base", config.years.base),
        ("coverage_target", config.years.target),
    ):
        low = t.loc[t[col] < COVERAGE_WARNING]
        if len(low):
            listing = ", ".join(
                f"{r.county_id} {r.name} {100 * getattr(r, col):.1f}%"
                for r in low.head(20).itertuples()
            )
            more = f" … ({len(low)} in all)" if len(low) > 20 else ""
            log.warning(
                "land use %d covers less than %.0f%% of %d counties: %s%s. Their missing area counts"
                " as non-ecological; check the land-use extent.",
                year,
                100 * COVERAGE_WARNING,
                len(low),
                listing,
                more,
            )
