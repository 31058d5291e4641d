"""The one number formatter (pipeline.numbers): rounding and text per kind, by hand."""

import math

import pytest

from pipeline.numbers import as_given, display, kind_of, legend_bound, rounded


@pytest.mark.parametrize(
    ("value", "kind", "text"),
    [
        (199.0, "count", "199"),  # the report printed "199.00 个"
        (2848, "count", "2,848"),
        (42.024555259539554, "ha", "42.02"),
        (-1234567.891, "ha", "−1,234,567.89"),
        (-0.004, "ha", "0.00"),  # rounds to zero: no minus sign
        (0.9999999999999989, "coef", "1.00"),
        (0.0034, "coef", "0.0034"),  # below 0.01: two significant figures, not 0.00
        (-0.00034, "coef", "−0.00034"),
        (12.345, "km", "12.3"),
        (5e9, "yuan", "5,000,000,000.00"),
        (None, "ha", ""),
        (math.nan, "ha", ""),
        (math.inf, "yuan", ""),
        ("北京市", "text", "北京市"),
        ("北京市", "ha", "北京市"),
    ],
)
def test_display(value, kind, text):
    assert display(value, kind) == text


def test_display_plain_minus_for_machines():
    assert display(-3.14159, "coef", minus="-") == "-3.14"


def test_rounded_cells():
    assert rounded(199.0, "count") == 199 and isinstance(rounded(199.0, "count"), int)
    assert rounded(42.024555259539554, "ha") == 42.02
    assert rounded(4.2e-11, "ha") == 0.0 and math.copysign(1, rounded(-4.2e-11, "ha")) == 1
    assert rounded(0.0034567, "coef") == 0.0035
    assert rounded("x", "ha") == "x"
    assert math.isnan(rounded(math.nan, "ha"))


def test_as_given_and_legend_bound():
    assert as_given(1860000) == "1,860,000"
    assert as_given(0.0681) == "0.0681"
    assert as_given(-1234.5) == "-1,234.5"
    assert legend_bound(48000.0) == "48,000"
    assert legend_bound(-0.25) == "−0.25"


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("n_counties", "count"),
        ("class_code", "count"),
        ("cap_binding", "count"),
        ("voucher_ha", "ha"),
        ("voucher_ha_p95", "ha"),
        ("demand_ha_p05", "ha"),
        ("value_yuan", "yuan"),
        ("price_yuan_per_ha", "yuan"),
        ("net_value_yuan_p50", "yuan"),
        ("gdp_coef", "coef"),
        ("p_demand", "coef"),
        ("area_km2", "km2"),
        ("distance_km", "km"),
        ("name", "text"),
        ("role", "text"),
    ],
)
def test_kind_of(key, kind):
    assert kind_of(key) == kind
