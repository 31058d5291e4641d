"""Exceptions of EcoVoucher.

One root, :class:`EcoVoucherError`. :class:`InputError` is bad input the user can fix (exit 2);
it carries every problem found, each naming the dataset, file, field, value or county ids and the
fix. Anything else that escapes is an internal error (exit 1).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input: where it is and what to do about it."""

    where: str  # dataset / file / field, e.g. "landuse 2010 (lu_2010.shp), field 'gridcode'"
    message: str  # what was found, what was expected and the fix

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class EcoVoucherError(Exception):
    """Root of every error EcoVoucher raises on purpose."""

    exit_code = 1


class InputError(EcoVoucherError, ValueError):
    """Bad input (catalog, config, data): the user can fix it. Exit status 2."""

    exit_code = 2

    def __init__(self, problems: list[Problem] | Problem | str, where: str = "input") -> None:
        if isinstance(problems, str):
            problems = [Problem(where, problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__(self._text())

    def _text(self) -> str:
        if len(self.problems) == 1:
            return str(self.problems[0])
        lines = [f"{len(self.problems)} problems with the input:"]
        lines += [f"  {i}. {p}" for i, p in enumerate(self.problems, 1)]
        return "\n".join(lines)
