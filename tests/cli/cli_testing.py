"""Helpers shared by the CLI tests."""


def one_error_line(capsys) -> str:
    """stderr holds exactly one line, an ``snnc: error:`` line; returns it."""
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("snnc: error: ")
    return err[0]
