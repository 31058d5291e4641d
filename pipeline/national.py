"""National reference values of one year (the denominators of G_t and P_t)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class NationalValues(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    gdp_per_capita_yuan: float = Field(gt=0, description="national GDP per capita, yuan")
    population_density_per_km2: float = Field(gt=0, description="national persons per km²")
