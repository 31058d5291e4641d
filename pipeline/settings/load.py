"""The settings stage as the run calls it: the catalog, the config and the coefficients of each
land-use year (by its legend), read and validated together (:func:`load_settings`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import InputError, Problem
from pipeline.settings.catalog import Catalog, load_catalog
from pipeline.settings.coefficients import Coefficients, coefficients_by_year
from pipeline.settings.config import Config, load_config

__all__ = ["Settings", "load_settings"]


@dataclass(frozen=True)
class Settings:
    """Everything a run is told: where the data are, how to compute, the coefficients."""

    catalog: Catalog
    config: Config
    coefficients: Mapping[int, Coefficients]  # year → the coefficients of its legend

    @property
    def years(self) -> tuple[int, int]:
        """(base, target)."""
        return self.config.years.base, self.config.years.target


def load_settings(catalog_path: str | Path, config_path: str | Path) -> Settings:
    """Read and validate the catalog, the config and the coefficient files it names, and match
    each land-use year with the coefficients of its legend
    (:func:`~pipeline.settings.coefficients.coefficients_by_year`)."""
    problems: list[Problem] = []  # the problems of both files reported together
    try:
        catalog = load_catalog(catalog_path)
    except InputError as exc:
        problems += exc.problems
    try:
        config, files = load_config(config_path)
    except InputError as exc:
        problems += exc.problems
    if problems:
        raise InputError(problems)
    return Settings(catalog, config, coefficients_by_year(catalog.legends(), files))
