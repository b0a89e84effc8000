"""One error hierarchy; every message names the thing, the value and what to do next."""

from __future__ import annotations

from collections.abc import Iterable


class NetraIsolationError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigurationError(NetraIsolationError, ValueError):
    """A setting, marker argument or option has a value that cannot work."""


class UnknownChoiceError(ConfigurationError):
    """A name (schema type, scenario, table set, snapshot) that is not one of the known ones."""

    def __init__(self, what: str, given: object, valid: Iterable[str], hint: str = "") -> None:
        self.what = what
        self.given = given
        self.valid = sorted(valid)
        choices = ", ".join(repr(v) for v in self.valid) or "(none defined)"
        message = f"unknown {what} {given!r}; valid {what}s: {choices}"
        super().__init__(f"{message}. {hint}".rstrip(". ") + ("." if hint else ""))


class UnknownSchemaTypeError(UnknownChoiceError):
    def __init__(
        self, given: object, valid: Iterable[str], backend: str = "postgres", hint: str = ""
    ) -> None:
        super().__init__(
            f"{backend} schema type",
            given,
            valid,
            hint or "Schema types are 'head' (every head of the history) and its branch labels",
        )


class ServerError(NetraIsolationError):
    """A database server could not be found, started or reached."""


class ServerUnreachableError(ServerError, ConnectionError):
    def __init__(
        self, backend: str, host: str, port: int, variable: str, cause: object, seconds: float
    ) -> None:
        self.host = host
        self.port = port
        super().__init__(
            f"{backend} at {host}:{port} did not answer within {seconds:g}s ({cause}). "
            f"Start it, or point {variable} at a running server, or unset it to let "
            "netra-isolation start a throwaway local one (`netra-isolation servers status`)."
        )


class BinariesNotFoundError(ServerError, FileNotFoundError):
    def __init__(self, backend: str, searched: Iterable[str], install: str) -> None:
        paths = "\n  ".join(searched)
        super().__init__(
            f"no {backend} server binaries found; searched:\n  {paths}\n"
            f"Install them ({install}) or set the external server variables "
            f"(TEST_{backend.upper()}_HOST / TEST_{backend.upper()}_PORT)."
        )


class ServerStartError(ServerError):
    def __init__(self, backend: str, reason: str, log_tail: str = "") -> None:
        tail = f"\n--- last lines of the server log ---\n{log_tail}" if log_tail else ""
        super().__init__(f"could not start the throwaway {backend} server: {reason}{tail}")


class OutOfSpaceError(ServerError):
    """The server's data directory is full: what uses it, and how to make room."""


class MigrationError(NetraIsolationError):
    """Alembic failed while building a template; the half-built template was dropped."""


class SeedError(NetraIsolationError):
    """A scenario failed while seeding a template."""


class TemplateBuildError(NetraIsolationError):
    """A template this run already failed to build: a later test that needs it fails at once,
    naming the test that showed the error in full; the build is not tried again in the run."""

    def __init__(self, backend: str, template: str, first: str, summary: str) -> None:
        self.backend = backend
        self.template = template
        self.first = first  # the test (nodeid) whose build failed, where the error is in full
        self.summary = summary  # the error's first line
        super().__init__(
            f"the {backend} template {template} could not be built in this run ({summary}); "
            f"in full at {first}"
        )

    def __reduce__(self) -> tuple[type[TemplateBuildError], tuple[str, str, str, str]]:
        return type(self), (self.backend, self.template, self.first, self.summary)


# Set on the error a failed template build raised, for the test that met it: the template's
# name (the pytest plugin shows that error with the user's frames only).
FAILED_TEMPLATE = "_netra_failed_template"
# ... and the TemplateBuildError a later test gets: pytest raises a wider fixture's error
# again for each of its tests, where it is said in that one line
FAILED_AT_ONCE = "_netra_failed_at_once"


class SnapshotError(NetraIsolationError):
    """A snapshot could not be taken or restored."""


class ValidationFailedError(NetraIsolationError, AssertionError):
    """State validation found a failing check (raised when validation gates a test)."""


class NoSessionError(NetraIsolationError, RuntimeError):
    """A factory was used where no test session (or not the right kind) is bound."""


class ClickHouseQueryError(NetraIsolationError, RuntimeError):
    """ClickHouse refused a statement; the message has the server's words and the SQL."""

    def __init__(self, message: str, sql: str) -> None:
        self.sql = sql
        super().__init__(f"{message}\n  in: {sql[:500]}")
