"""The one small exception tree. Messages say what was expected and what arrived."""


class GaitwatchError(Exception):
    """Base of every error gaitwatch raises on purpose (the CLI prints it in one line)."""


class InputError(GaitwatchError):
    """A recording, sidecar or stream does not have the expected form.

    ``where`` is ``file:line:column`` (as far as known) so a user can find the fault.
    """

    def __init__(self, message: str, *, path: str = "", line: int | None = None, column: str | None = None):
        self.path, self.line, self.column = path, line, column
        where = path
        if line is not None:
            where += f":{line}"
        if column is not None:
            where += f" column {column!r}"
        super().__init__(f"{where}: {message}" if where else message)


class ConfigError(GaitwatchError):
    """The TOML config or a command-line option is invalid."""


class SinkError(GaitwatchError):
    """A sink cannot write (wrong credentials, unreachable server at start, full disk)."""


class DeviceError(GaitwatchError):
    """A serial or BLE device cannot be opened or speaks an unexpected protocol."""
