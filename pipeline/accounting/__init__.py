"""Stage 4 — accounting: standard-forest areas and the static and dynamic vouchers per county
(:func:`account`: M, ΔM, G, P, E, Q and the roles; :func:`change_layer`: the change map's
ΔM per piece), the voucher market (:func:`clear_market`)
and the Monte Carlo of the vouchers (:func:`monte_carlo`). Configured by the models of
:mod:`pipeline.settings`. The run calls :func:`account_counties` (vouchers), :func:`add_market` and
:func:`add_uncertainty` (the Monte Carlo)."""

from pipeline.accounting.market import MarketResult, clear_market
from pipeline.accounting.stage import account_counties, add_market, add_uncertainty
from pipeline.accounting.uncertainty import UncertaintyResult, monte_carlo
from pipeline.accounting.vouchers import Accounts, account, change_layer

__all__ = [
    "Accounts",
    "MarketResult",
    "UncertaintyResult",
    "account",
    "account_counties",
    "add_market",
    "add_uncertainty",
    "change_layer",
    "clear_market",
    "monte_carlo",
]
