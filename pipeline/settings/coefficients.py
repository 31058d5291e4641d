"""Standard-forest coefficients k_i (paper Table 1), given directly or derived from ESV values.

A coefficient file maps RESDC codes to ``{k, esv_yuan_per_ha, name}``. With ``esv_reference_code``
set, k may be omitted and is derived as k_i = ESV_i / ESV_ref; where both are given, the derived
value must round to the given k (two decimals), which is how the paper's Table 1 was made.
Codes absent from the file are not ecological (k = 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipeline.codes import RESDC_CLASSES
from pipeline.settings.parse import parse_model, read_yaml


class _ClassEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    k: float | None = Field(None, ge=0, description="standard-forest coefficient")
    esv_yuan_per_ha: float | None = Field(None, gt=0)
    name: str | None = None
    note: str | None = None


class _CoefficientFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str | None = None
    esv_reference_code: int | None = None
    classes: dict[int, _ClassEntry]

    @model_validator(mode="after")
    def _check(self) -> _CoefficientFile:
        problems = []
        unknown = sorted(set(self.classes) - set(RESDC_CLASSES))
        if unknown:
            problems.append(
                f"codes {unknown} are not RESDC level-2 codes (valid: {sorted(RESDC_CLASSES)})"
            )
        ref = self.esv_reference_code
        ref_esv = None
        if ref is not None:
            ref_esv = self.classes.get(ref, _ClassEntry()).esv_yuan_per_ha
            if ref_esv is None:
                problems.append(f"esv_reference_code {ref} has no esv_yuan_per_ha in classes")
        for code, e in sorted(self.classes.items()):
            if e.k is None and (ref_esv is None or e.esv_yuan_per_ha is None):
                problems.append(
                    f"class {code}: give k, or esv_yuan_per_ha together with esv_reference_code"
                )
            elif e.k is not None and ref_esv is not None and e.esv_yuan_per_ha is not None:
                derived = e.esv_yuan_per_ha / ref_esv
                if round(derived, 2) != round(e.k, 2):
                    problems.append(
                        f"class {code}: k = {e.k} but ESV {e.esv_yuan_per_ha:g} / "
                        f"{ref_esv:g} = {derived:.4f}; make them agree"
                    )
        if problems:
            raise ValueError("; ".join(problems))
        return self


@dataclass(frozen=True)
class Coefficients:
    """k per RESDC code (ecological classes only), and where they came from."""

    k: dict[int, float]
    names: dict[int, str]
    path: Path
    source: str | None = None

    def of(self, code: int) -> float:
        return self.k.get(int(code), 0.0)


def load_coefficients(path: str | Path) -> Coefficients:
    """Read a coefficient file; k is taken as given, else derived from the ESV column."""
    path = Path(path)
    parsed = parse_model(_CoefficientFile, read_yaml(path, "coefficients"), path, "coefficients")
    ref = parsed.esv_reference_code
    k: dict[int, float] = {}
    for code, e in parsed.classes.items():
        if e.k is not None:
            k[code] = float(e.k)
        else:
            # k_i = ESV_i / ESV_ref, e.g. shrubland 34858 / 39065 = 0.892
            k[code] = float(e.esv_yuan_per_ha) / float(parsed.classes[ref].esv_yuan_per_ha)
    names = {c: (e.name or RESDC_CLASSES[c]) for c, e in parsed.classes.items()}
    return Coefficients(k=k, names=names, path=path, source=parsed.source)
