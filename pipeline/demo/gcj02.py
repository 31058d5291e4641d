"""GCJ-02 (AutoNavi's shifted datum) ↔ WGS84, vectorized over numpy arrays.

The forward formula (WGS84 → GCJ-02) is the published one, as in ``cnmaps``'s ``gcj02_to_wgs84``
helpers. There is no closed-form inverse: the common one-step approximation
``wgs = 2·gcj − f(gcj)`` is off by up to a few metres; here it is refined by fixed-point
iteration ``w ← w − (f(w) − gcj)`` until the residual is below 1e-10 degrees (≈ 0.01 mm).
"""

from __future__ import annotations

import numpy as np

_A = 6378245.0  # Krasovsky semi-major axis used by the GCJ-02 obfuscation
_EE = 0.00669342162296594323  # its first eccentricity squared

METHOD = (
    "GCJ-02 → WGS84 by fixed-point iteration of the published WGS84→GCJ-02 formula "
    "(start wgs = 2·gcj − f(gcj), iterate until the residual < 1e-10°, max 10 steps)"
)


def _out_of_china(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    return (lon < 72.004) | (lon > 137.8347) | (lat < 0.8293) | (lat > 55.8271)


def _delta(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 offset (dlon, dlat) in degrees at WGS84 (lon, lat)."""
    x = lon - 105.0
    y = lat - 35.0
    pi = np.pi
    sx = np.sqrt(np.abs(x))
    common = (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sx + common
    dlat += (20.0 * np.sin(y * pi) + 40.0 * np.sin(y / 3.0 * pi)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(y / 12.0 * pi) + 320.0 * np.sin(y * pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sx + common
    dlon += (20.0 * np.sin(x * pi) + 40.0 * np.sin(x / 3.0 * pi)) * 2.0 / 3.0
    dlon += (150.0 * np.sin(x / 12.0 * pi) + 300.0 * np.sin(x / 30.0 * pi)) * 2.0 / 3.0
    radlat = lat / 180.0 * pi
    magic = 1.0 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrtmagic) * pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * pi)
    outside = _out_of_china(lon, lat)
    return np.where(outside, 0.0, dlon), np.where(outside, 0.0, dlat)


def wgs84_to_gcj02(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 lon/lat (degrees, arrays) → GCJ-02 lon/lat."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    dlon, dlat = _delta(lon, lat)
    return lon + dlon, lat + dlat


def gcj02_to_wgs84(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 lon/lat (degrees, arrays) → WGS84 lon/lat, iteratively refined."""
    glon = np.asarray(lon, dtype=float)
    glat = np.asarray(lat, dtype=float)
    dlon, dlat = _delta(glon, glat)
    wlon, wlat = glon - dlon, glat - dlat
    for _ in range(10):
        flon, flat = wgs84_to_gcj02(wlon, wlat)
        rlon, rlat = flon - glon, flat - glat
        wlon = wlon - rlon
        wlat = wlat - rlat
        if rlon.size == 0 or max(np.abs(rlon).max(), np.abs(rlat).max()) < 1e-10:
            break
    return wlon, wlat
