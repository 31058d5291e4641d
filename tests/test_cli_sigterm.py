"""SIGTERM that an extension wraps into an error of its own still ends the run as terminated.

Seen: SIGTERM arriving while pydantic serialised a path raised ``Terminated`` inside
pydantic-core, which turned it into ``PydanticSerializationError`` — the run exited 1 with
"internal error … this is a bug" instead of 143 with the truth about the output folder."""

import signal

from pipeline import cli


def test_wrapped_sigterm_exits_143_not_as_a_bug(monkeypatch, tmp_path, capsys):
    def run_that_gets_terminated_inside_an_extension(args, progress):
        try:
            cli._terminate(signal.SIGTERM, None)  # what the signal handler does
        except cli.Terminated:  # what pydantic-core did with it
            raise ValueError("Error calling function `ser_path`: Terminated: ") from None
        return 0

    monkeypatch.setitem(cli.COMMANDS, "run", run_that_gets_terminated_inside_an_extension)
    code = cli.main(["run", "--catalog", str(tmp_path / "c.yaml"), "--config",
                     str(tmp_path / "f.yaml"), "--out", str(tmp_path / "out")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 143
    assert err.startswith("terminated;") and "bug" not in err


def test_an_ordinary_error_is_still_reported_as_internal(monkeypatch, tmp_path, capsys):
    def run_with_a_bug(args, progress):
        raise ValueError("boom")

    monkeypatch.setitem(cli.COMMANDS, "run", run_with_a_bug)
    code = cli.main(["run", "--catalog", str(tmp_path / "c.yaml"), "--config",
                     str(tmp_path / "f.yaml"), "--out", str(tmp_path / "out")])  # fmt: skip
    assert code == 1
    assert "internal error: ValueError: boom" in capsys.readouterr().err
