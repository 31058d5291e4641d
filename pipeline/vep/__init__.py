"""VEP: the value of the ecosystem products of one site (特定地域单元生态产品价值), docs/method.md §2.

For each ecosystem product (an *item* of the config) V = P − P', where P is the expected income of
the site with the product and P' (``p_prime``, default 0) the income without it. P comes from one
of five appraisal methods:

* ``income_capitalization`` (收益还原法): constant net income A over n years,
  P = A/r · (1 − (1+r)^−n); or a list of yearly net incomes A_1 … A_n, P = Σ A_i (1+r)^−i.
* ``perpetual_income`` (马克思地价公式): P = a / r.
* ``market_comparison`` (市场比较法): P = Σ premium_per_m2 × floor_area_m2 over the properties.
* ``residual`` (剩余法): P = completed_value − development_cost − normal_profit.
* ``cost`` (成本法): P = Σ amounts.

All money is in yuan, rates are fractions (0.0681, not 6.81). Amounts are computed in float64 and
rounded only for display. Categories: the five standard ones (material, regulating, landscape,
tourism, cultural) are recognised; any other non-empty name is accepted with a warning, so that
local standards with further categories (e.g. rights income) can be valued.

Public names: :func:`run_vep`, :func:`compute_items`, :class:`VepConfig` (and its parts),
:class:`ItemResult`, :class:`VepResult`.
"""

from pipeline.vep.compute import ItemResult, VepResult, compute_items
from pipeline.vep.config import (
    CATEGORIES,
    METHODS,
    CostLine,
    PropertyComparison,
    SiteConfig,
    VepConfig,
    VepItem,
)
from pipeline.vep.output import run_vep

__all__ = [
    "CATEGORIES",
    "METHODS",
    "CostLine",
    "ItemResult",
    "PropertyComparison",
    "SiteConfig",
    "VepConfig",
    "VepItem",
    "VepResult",
    "compute_items",
    "run_vep",
]
