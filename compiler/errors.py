"""Every error snnc raises on purpose; all derive from :class:`SnncError`.

The CLI turns any :class:`SnncError` into one line on stderr and exit status 2
(``--verbose`` shows the traceback). Anything else escaping is a bug in snnc.
"""


class SnncError(Exception):
    """Base class: bad input or usage, reported to the user as one line."""


class ModelFormatError(SnncError):
    """A model file that cannot be read: unknown type, corrupt, truncated."""


class UnsupportedError(SnncError):
    """A model uses something outside snnc's op set (names the layer and what is supported)."""


class VerificationError(SnncError):
    """A graph that breaks the IR's rules (structure, types, op legality)."""


class ParseError(SnncError):
    """IR text that does not parse; names the line."""


class DataError(SnncError):
    """Input data of the wrong shape, type or content."""


class PassError(SnncError):
    """A compiler pass that cannot do its work; names the pass and the node."""


class BuildError(SnncError):
    """A backend that cannot build a graph (an op it does not lower, a limit it cannot meet)."""


class InternalError(Exception):
    """An unexpected exception inside snnc (a bug), with where it happened: ``where`` names
    the pass, backend or file being worked on. Not a :class:`SnncError`: the CLI reports it
    with its own exit status, so it is never mistaken for bad input or a failed check."""

    def __init__(self, where: str, cause: BaseException):
        super().__init__(f"{where}: {type(cause).__name__}: {cause}")
        self.where = where
        self.cause = cause


def reraise_internal(where: str, exc: BaseException):
    """Re-raise ``exc`` unchanged when it is already reported cleanly (a :class:`SnncError`,
    an :class:`InternalError` that knows its place, an interrupt); otherwise as an
    :class:`InternalError` naming ``where``. Call it from an ``except BaseException`` block."""
    if isinstance(exc, (SnncError, InternalError)) or not isinstance(exc, Exception):
        raise exc
    raise InternalError(where, exc) from exc
