"""Shared by the frontends' error tests: a bad file fails with one line naming it."""

import pytest

from snnc.compiler import load_model


def raises(error_type, path, *fragments, path_loaded=None, **load_options):
    """Loading ``path`` (or ``path_loaded``, with ``load_options`` for ``load_model``) raises
    ``error_type`` whose one-line message names ``path`` and contains every fragment;
    returns the message."""
    with pytest.raises(error_type) as info:
        load_model(path if path_loaded is None else path_loaded, **load_options)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, message
    return message
