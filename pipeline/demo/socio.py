"""Synthetic county GDP and population (SYNTHETIC — not statistical-yearbook data).

Plausible, not real: population density rises with urban intensity and falls with elevation;
GDP per capita relative to the national figure is high in city districts (≈ 2–4×) and low in
mountain counties (≈ 0.4–0.7×). 2010 and 2018 national references (as configs/jingjinji.yaml):
GDP per capita 30,808 and 65,534 yuan, population density 139.7 and 145.4 per km².
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from pipeline.demo.terrain import Dem
from pipeline.demo.urban import Cores

NATIONAL_GDP_PER_CAPITA = {2010: 30808.0, 2018: 65534.0}
NATIONAL_POP_DENSITY = {2010: 139.7, 2018: 145.4}


def build_socio(
    counties: gpd.GeoDataFrame, albers_geoms: np.ndarray, cores: Cores, seed: int
) -> pd.DataFrame:
    """One row per county and year: code, year, gdp (10⁴ yuan), pop (10⁴ persons)."""
    rng = np.random.default_rng([seed, 200])
    n = len(counties)
    area_km2 = shapely.area(albers_geoms) / 1e6
    rep = shapely.point_on_surface(albers_geoms)
    x, y = shapely.get_x(rep), shapely.get_y(rep)
    cen = shapely.centroid(counties.geometry.values)
    dem = Dem.load()
    elev = dem.elevation(shapely.get_x(cen), shapely.get_y(cen))
    # urbanness: the city cores (not the county towns) seen from the county's interior point,
    # damped for large counties (a big 区 is mostly countryside)
    size = np.interp(area_km2, [150.0, 3000.0], [1.0, 0.35])
    district = counties["name"].astype(str).str.endswith("区").to_numpy()
    small = district & (area_km2 < 200.0)
    u10 = cores.intensity(x, y, 2010, widen=1.5, towns=False) * size
    u18 = cores.intensity(x, y, 2018, widen=1.5, towns=False) * size
    urban10 = np.clip(np.maximum(u10, 0.6 * small), 0, 1)
    urban18 = np.clip(np.maximum(u18, 0.6 * small), 0, 1)

    terrain = np.interp(elev, [0, 100, 500, 1200, 3000], [1.3, 1.1, 0.6, 0.3, 0.08])
    eps_d = rng.normal(0.0, 0.2, n)
    eps_g = rng.normal(0.0, 0.18, n)
    eps_d18 = rng.normal(0.0, 0.03, n)
    eps_g18 = rng.normal(0.0, 0.06, n)

    dens10 = 300.0 * terrain * (1.0 + 30.0 * urban10**1.5) * np.exp(eps_d)
    dens18 = dens10 * (1.0 + 0.12 * (urban18 - urban10) + 0.08 * urban10 - 0.03)
    dens18 = dens18 * np.exp(eps_d18)
    rel10 = (0.35 + 0.45 * np.clip(terrain / 1.3, 0, 1) + 2.4 * urban10**1.2) * np.exp(eps_g)
    rel18 = rel10 * np.exp(eps_g18) * (1.0 + 0.1 * (urban18 - urban10))

    rows = []
    for year, dens, rel in ((2010, dens10, rel10), (2018, dens18, rel18)):
        pop = dens * area_km2 / 1e4  # 10⁴ persons
        gdp = pop * rel * NATIONAL_GDP_PER_CAPITA[year]  # 10⁴ persons × yuan = 10⁴ yuan
        rows.append(
            pd.DataFrame(
                {
                    "code": counties["adcode"].to_numpy(),
                    "year": year,
                    "gdp": np.round(gdp, 2),
                    "pop": np.round(np.maximum(pop, 0.01), 4),
                }
            )
        )
    df = pd.concat(rows, ignore_index=True)
    return df.sort_values(["code", "year"], kind="stable").reset_index(drop=True)
