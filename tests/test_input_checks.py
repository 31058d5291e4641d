"""Checks made before any work (issue 18): coordinates against their declared CRS, and the
--scheduler address."""

from __future__ import annotations

import pytest
from pyproj import CRS

from conftest import RESDC_PRJ, X0, Y0
from pipeline.errors import InputError
from pipeline.geom.crs_sanity import coordinates_misfit
from pipeline.runtime.scheduler import check_address

# the fixtures' land use: metres in Albers, about 117°E 36°N
METRES = (X0, Y0, X0 + 25_000, Y0 + 10_000)


@pytest.mark.parametrize("crs", ["EPSG:4326", "EPSG:4490", "EPSG:4214"])
def test_metres_declared_as_degrees_are_named(crs):
    msg = coordinates_misfit(METRES, CRS.from_user_input(crs))
    assert msg is not None and "not longitudes and latitudes in degrees" in msg
    assert "1e+06" in msg and ".prj" in msg


@pytest.mark.parametrize(
    ("bounds", "crs"),
    [
        ((116.0, 36.0, 117.5, 37.0), "EPSG:4326"),  # degrees in degrees
        ((0.0, -90.0, 360.0, 90.0), "EPSG:4326"),  # 0…360 longitudes
        (METRES, RESDC_PRJ),  # custom WKT without an area of use: within the Earth's reach
        ((400_000, 4_000_000, 500_000, 4_100_000), "EPSG:32650"),  # UTM 50N in its zone
        ((1.3e7, 4.3e6, 1.31e7, 4.31e6), "EPSG:3857"),  # Beijing in web Mercator
    ],
)
def test_plausible_coordinates_pass(bounds, crs):
    assert coordinates_misfit(bounds, CRS.from_user_input(crs)) is None


def test_projected_coordinates_beyond_the_earth_are_named():
    # 400,000 km east of the origin: no point of the Earth is more than 40,000 km away
    msg = coordinates_misfit((4e8, 4e6, 5e8, 4.1e6), CRS.from_epsg(32650))
    assert msg is not None and "farther from the origin" in msg


def test_projected_coordinates_far_from_the_area_of_use_are_named():
    # UTM 50N is used from 114°E to 120°E: x 166 km … 834 km; 5,000 km west is another zone
    msg = coordinates_misfit((-5e6, 4e6, -4.9e6, 4.1e6), CRS.from_epsg(32650))
    assert msg is not None and "nowhere near where" in msg


def test_empty_file_bounds_are_left_to_other_checks():
    nan = float("nan")
    assert coordinates_misfit((nan, nan, nan, nan), CRS.from_epsg(4326)) is None


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("tcp://10.0.0.5:8786", "tcp://10.0.0.5:8786"),
        ("10.0.0.5:8786", "tcp://10.0.0.5:8786"),
        (" tls://sched.example:8786 ", "tls://sched.example:8786"),
        ("tcp://[::1]:8786", "tcp://[::1]:8786"),
    ],
)
def test_scheduler_addresses_accepted(text, address):
    assert check_address(text) == address


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("localhost", "no port"),
        ("http://localhost:8786", "'http://' is not a dask protocol"),
        ("tcp://", "no host"),
        ("tcp://h:x", "port is not a number"),
        ("tcp://h:99999", "port is not a number"),
        ("tcp://h:8786/path", "more than protocol"),
    ],
)
def test_bad_scheduler_addresses_are_named(text, why):
    with pytest.raises(InputError) as e:
        check_address(text)
    assert e.value.exit_code == 2
    assert (
        why in str(e.value) and "--scheduler" in str(e.value) and "tcp://host:8786" in str(e.value)
    )
