"""The statistics CSV: GDP and population of the target year per county, checked against the
counties."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from pipeline.errors import InputError, Problem
from pipeline.ingest.counties import id_text, listed_ids
from pipeline.settings.catalog import SocioSource

log = logging.getLogger(__name__)


# --- statistics ----------------------------------------------------------------------------------


_ENCODINGS = ["utf-8-sig", "gbk"]
#: statistics delivered as a workbook (yearbook tables often are), read with openpyxl
_EXCEL = (".xlsx", ".xlsm")


def _read_socio_sheet(src: SocioSource, where: str) -> pd.DataFrame:
    """The first sheet (or ``sheet:``) of an .xlsx workbook, every cell as text, the first row
    as the header; numbers come back as Excel stored them (1234.5 → "1234.5")."""
    try:
        sheets = pd.read_excel(src.path, sheet_name=None, dtype=str, engine="openpyxl")
    except Exception as exc:
        raise InputError(
            f"is not a readable .xlsx workbook ({exc}); open it in Excel and save it again, or "
            "save it as CSV UTF-8",
            where=where,
        ) from exc
    if src.sheet is not None and src.sheet not in sheets:
        raise InputError(
            f"has no sheet '{src.sheet}' (sheets: {', '.join(sheets)}); fix 'sheet' in the catalog",
            where=where,
        )
    name = src.sheet if src.sheet is not None else next(iter(sheets))
    df = sheets[name]
    df.columns = [str(c).strip() for c in df.columns]
    return df.apply(lambda col: col.str.strip() if col.dtype == object else col)


def read_socio(
    src: SocioSource,
    year: int,
    county_ids: pd.Series | None,
    known_ids: frozenset[str] | None,
    notes: list[str],
) -> pd.DataFrame:
    """Target-year GDP and population per county; ``county_ids`` None (counties unreadable) checks
    the file alone."""
    where = f"socioeconomic ({src.path})"
    if not src.path.exists():
        raise InputError(f"file not found: {src.path}. Fix 'path' in the catalog.", where=where)
    df = _read_socio_sheet(src, where) if src.path.suffix.lower() in _EXCEL else None
    for encoding in [] if df is not None else [src.encoding] if src.encoding else _ENCODINGS:
        try:
            df = pd.read_csv(src.path, dtype=str, encoding=encoding, skipinitialspace=True)
        except UnicodeDecodeError:
            continue
        except LookupError as exc:
            raise InputError(f"unknown encoding '{encoding}' ({exc})", where=where) from exc
        except Exception as exc:
            raise InputError(f"is not a readable CSV ({exc})", where=where) from exc
        if encoding == "gbk" and not src.encoding:  # Chinese Excel saves CSV as GBK
            notes.append(f"{where}: not UTF-8; read as GBK")
            log.warning("%s: not UTF-8; read as GBK (set 'encoding:' to silence)", where)
        break
    if df is None:
        tried = src.encoding or "UTF-8 or GBK"
        raise InputError(
            f"does not decode as {tried}; set 'encoding:' (e.g. gb18030) in its catalog entry",
            where=where,
        )
    cols = [src.id_field, src.year_field, src.gdp_field, src.population_field]
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise InputError(
            f"has no column {', '.join(map(repr, missing))} (columns: {', '.join(df.columns)}); "
            "name the right columns in the catalog.",
            where=where,
        )
    df = df[cols].rename(
        columns={
            src.id_field: "county_id",
            src.year_field: "year",
            src.gdp_field: "gdp",
            src.population_field: "pop",
        }
    )
    df["county_id"] = df["county_id"].map(id_text)
    df["year"] = pd.to_numeric(df["year"], errors="coerce")
    df = df.loc[df["year"] == year]
    wanted = set(county_ids) if county_ids is not None else set(df["county_id"])
    problems = []
    for col, field_name in (("gdp", src.gdp_field), ("pop", src.population_field)):
        num = pd.to_numeric(df[col], errors="coerce")
        mine = df["county_id"].isin(wanted)  # other counties' cells are not used: not checked
        bad = df.loc[num.isna() & mine, "county_id"]
        if len(bad):
            problems.append(
                Problem(
                    f"{where}, column '{field_name}', year {year}",
                    f"non-numeric or empty values for counties {listed_ids(bad)}",
                )
            )
        inf = df.loc[np.isinf(num) & mine, "county_id"]  # inf, Infinity, 1e400
        if len(inf):
            problems.append(
                Problem(
                    f"{where}, column '{field_name}', year {year}",
                    f"values that are not finite numbers (inf, Infinity, or beyond 1e308) for "
                    f"counties {listed_ids(inf)}",
                )
            )
        nonpos = df.loc[(num <= 0) & mine, "county_id"]
        if len(nonpos):
            problems.append(
                Problem(
                    f"{where}, column '{field_name}', year {year}",
                    f"zero or negative values for counties {listed_ids(nonpos)}; they must be > 0",
                )
            )
        df[col] = num
    dups = df.loc[
        df["county_id"].duplicated(keep=False) & df["county_id"].isin(wanted), "county_id"
    ]
    if len(dups):
        problems.append(
            Problem(where, f"several rows for year {year} for counties {listed_ids(dups)}")
        )
    absent = sorted(wanted - set(df["county_id"]))
    if absent:
        stripped = {i.lstrip("0") for i in df["county_id"].dropna()}
        hint = ""
        if any(i.lstrip("0") in stripped for i in absent if i.startswith("0")):
            hint = " The CSV seems to have lost leading zeros (e.g. opened in Excel): keep codes as text."
        problems.append(
            Problem(
                where,
                f"no row for year {year} for {len(absent)} counties of the study area: "
                f"{listed_ids(absent)}. Add them (GDP and population are needed for G_t and P_t).{hint}",
            )
        )
    if problems:
        raise InputError(problems)
    extra = sorted(set(df["county_id"]) - wanted)
    if extra:
        unknown = sorted(set(extra) - (known_ids or frozenset()))
        if unknown:  # a typo in a code, or a table of another boundary release
            msg = f"rows for {len(unknown)} counties that are not in the counties file ignored: "
            notes.append(f"{where}: {msg}{listed_ids(unknown)}")
            log.warning("%s: %s%s", where, msg, listed_ids(unknown))
        if len(extra) > len(unknown):
            notes.append(
                f"{where}: ignored rows for {len(extra) - len(unknown)} counties outside the "
                "study area"
            )
    df = df.loc[df["county_id"].isin(wanted)]
    # gdp × gdp_scale is yuan, e.g. 1,234.5 (10⁴ yuan) × 10000 = 12,345,000 yuan. A product too
    # large for a float becomes inf without numpy's RuntimeWarning: the refusal below names it.
    with np.errstate(over="ignore", invalid="ignore"):
        gdp_yuan = df["gdp"].to_numpy(float) * src.gdp_scale
        population = df["pop"].to_numpy(float) * src.population_scale
    out = pd.DataFrame(
        {"gdp_yuan": gdp_yuan, "population": population},
        index=pd.Index(df["county_id"], name="county_id"),
    ).sort_index()
    for col, scale in (("gdp_yuan", "gdp_scale"), ("population", "population_scale")):
        over = out.index[~np.isfinite(out[col].to_numpy())]
        if len(over):
            raise InputError(
                f"{col.split('_')[0]} × {scale} ({getattr(src, scale):g}) overflows for counties "
                f"{listed_ids(list(over))}; check {scale} in the catalog",
                where=where,
            )
    return out
