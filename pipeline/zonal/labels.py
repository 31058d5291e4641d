"""The zonal result in the codes of each year's legend.

The zonal stage counts classes as int16 numbers (a legend's own codes for RESDC and the other
numeric legends, positions for text codes; see :meth:`pipeline.settings.legends.Legend.
to_internal`). :func:`in_legend_codes` turns them back into each year's codes and adds what the
output tables carry about legends:

- ``class_areas``: ``legend`` (the shipped name or the legend file's name) after ``area_ha``;
- ``transitions``: ``from_group, to_group`` (the classes' groups: cropland, forest, …; "no data"
  where a side is missing), and ``from_legend, to_legend`` when the two years' legends differ;
- ``changes`` (the change map): its codes only;
- ``landuse`` (each year's land use clipped to the counties): its codes, ``class_group`` (the
  class's group) after them and ``legend``.

Codes are written as text in a table where any year's legend has text codes (a numeric legend's
codes then as their decimal text, "21"), so that one column holds one type.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from pipeline.settings.legends import Legend
from pipeline.zonal.vector import ZonalResult

__all__ = ["NO_DATA_GROUP", "in_legend_codes"]

#: the group of the "no data" side of a transition
NO_DATA_GROUP = "no data"


def in_legend_codes(
    result: ZonalResult, legends: Mapping[int, Legend], years: tuple[int, int]
) -> ZonalResult:
    """``result`` with each year's codes in its legend (see the module text)."""
    used = {y: legends[y] for y in sorted(set(result.class_areas["year"].unique()) | set(years))
            if y in legends}  # fmt: skip
    text = any(leg.text for leg in used.values())

    def codes(values: pd.Series, legend: Legend) -> list:
        out = legend.from_internal(values.to_numpy())
        return [str(c) for c in out] if text and not legend.text else out

    def column(values: list, like: pd.Series) -> pd.Series:
        # numeric codes keep the zonal stage's dtype (RESDC tables stay as they were)
        return pd.Series(values, index=like.index, dtype=object if text else like.dtype)

    ca = result.class_areas
    nodata_rows = ca["class_code"].to_numpy() == 0  # vector features of a legend's nodata codes
    ca = ca.loc[~nodata_rows].reset_index(drop=True) if nodata_rows.any() else ca.copy()
    year_col = ca["year"].to_numpy()
    new_codes: list = [None] * len(ca)
    tags: list = [None] * len(ca)
    for year, legend in used.items():
        rows = (year_col == year).nonzero()[0]
        for i, c in zip(rows, codes(ca["class_code"].iloc[rows], legend)):
            new_codes[i] = c
            tags[i] = legend.tag
    ca["class_code"] = column(new_codes, ca["class_code"])
    ca["legend"] = tags

    tr = result.transitions
    if tr is not None:
        base, target = (legends[y] for y in years)
        keys = ["county_id", "from_code", "to_code"]
        if nodata_rows.any() and tr.duplicated(keys).any():  # nodata features and the residual
            tr = tr.groupby(keys, as_index=False, sort=True)["area_ha"].sum()
        tr = tr.copy()
        from_codes = codes(tr["from_code"], base)
        to_codes = codes(tr["to_code"], target)
        tr["from_group"] = [_group(base, c) for c in base.from_internal(tr["from_code"])]
        tr["to_group"] = [_group(target, c) for c in target.from_internal(tr["to_code"])]
        tr["from_code"] = column(from_codes, tr["from_code"])
        tr["to_code"] = column(to_codes, tr["to_code"])
        if base.key != target.key:
            tr["from_legend"] = base.tag
            tr["to_legend"] = target.tag
    ch = result.changes
    if ch is not None:
        base, target = (legends[y] for y in years)
        ch = ch.copy()
        ch["from_code"] = column(codes(ch["from_code"], base), ch["from_code"])
        ch["to_code"] = column(codes(ch["to_code"], target), ch["to_code"])
    layers = None
    if result.landuse is not None:
        layers = {}
        for year, layer in result.landuse.items():
            layer = layer.copy()
            legend = legends[year]
            groups = [_group(legend, c) for c in legend.from_internal(layer["class_code"])]
            layer["class_code"] = column(codes(layer["class_code"], legend), layer["class_code"])
            layer.insert(2, "class_group", groups)
            layer["legend"] = legend.tag
            layers[year] = layer
    return ZonalResult(ca, tr, result.notes, ch, layers)


def _group(legend: Legend, code: object) -> str:
    cls = legend.classes.get(code)  # type: ignore[arg-type]
    return cls.group if cls is not None else NO_DATA_GROUP
