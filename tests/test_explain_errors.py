"""The one translator of pydantic errors (pipeline.settings.parse.explain_errors), used by the
settings files and by the VEP config alike."""

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from pipeline.errors import InputError
from pipeline.settings.parse import Number, explain_errors, parse_model


class _Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: Number


class _Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    parts: list[_Inner] = []


def test_settings_unknown_key_gets_the_closest_valid_key(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        parse_model(_Outer, {"nmae": "x"}, tmp_path / "c.yaml", "config")
    text = str(info.value)
    assert "key 'nmae'" in text and "did you mean 'name'" in text  # the misspelling
    assert "valid keys here: name, parts" in text
    assert "key 'name'" in text and "missing (required)" in text  # and the real key, missing


def test_list_items_are_named_by_the_caller_and_fields_inside_are_1_based() -> None:
    raw = {"name": "x", "parts": [{"amount": 1}, {"amonut": 2}]}
    with pytest.raises(ValidationError) as info:
        _Outer.model_validate(raw)
    problems = explain_errors(
        info.value, raw, "f.yaml", _Outer, items=("parts", lambda i, it: f"f.yaml, part {i}")
    )
    wheres = [p.where for p in problems]
    # the second element (index 1 -> "part 2"); its unknown key suggested from _Inner's fields
    assert wheres == ["f.yaml, part 2, field 'amount'", "f.yaml, part 2, field 'amonut'"]
    assert "did you mean 'amount'" in problems[1].message
