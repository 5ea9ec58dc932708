"""Finding the installation every command works on, the same way ``akener serve`` does.

An installation is a directory holding ``.env`` (the server secret) and, on SQLite, the
database file. It is the directory given with ``--dir``, else ``AKENER_HOME``, else the
working directory. A relative SQLite path (the default ``./akener.db``) is read relative to it,
so a command run from elsewhere with ``--dir`` finds the same files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from akener.errors import InvalidInput
from akener.settings import Settings

HOME_VARIABLE = "AKENER_HOME"
ENV_FILE = ".env"
PRIVATE = 0o600


@dataclass(frozen=True, slots=True)
class Installation:
    """One installation's directory and the settings read from it."""

    home: Path
    settings: Settings

    @property
    def env_file(self) -> Path:
        """The ``.env`` file of this installation."""
        return self.home / ENV_FILE

    @property
    def sqlite_file(self) -> Path | None:
        """The SQLite database file, or None on PostgreSQL or an in-memory database."""
        if not self.settings.is_sqlite:
            return None
        database = make_url(self.settings.database_url).database
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        return Path(database)

    def where(self) -> str:
        """Where this installation was looked for, for error messages."""
        places = [str(self.env_file)]
        if self.sqlite_file is not None:
            places.append(str(self.sqlite_file))
        return " and ".join(places)

    def require_database(self) -> None:
        """Stop unless the database exists; only ``serve`` and ``db upgrade`` create one."""
        path = self.sqlite_file
        if path is not None and not path.exists():
            raise InvalidInput(
                f"no akener installation here: looked for {self.where()}. Run the command in the "
                f"directory where 'akener serve' runs, pass --dir DIR or set {HOME_VARIABLE}"
                " ('akener serve' or 'akener db upgrade' creates a new one)"
            )

    def prepare_database_file(self) -> None:
        """Create the SQLite file readable by its owner only (its WAL and SHM files take the
        database file's mode), and tighten the files of an existing installation."""
        path = self.sqlite_file
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, PRIVATE))
        for suffix in ("", "-wal", "-shm", "-journal"):
            part = path.with_name(path.name + suffix)
            if part.exists():
                part.chmod(PRIVATE)


def home_directory(explicit: Path | str | None = None) -> Path:
    """``--dir``, else ``AKENER_HOME``, else the working directory; it must exist."""
    chosen = explicit or os.environ.get(HOME_VARIABLE) or "."
    home = Path(chosen).expanduser().resolve()
    if not home.is_dir():
        source = "--dir" if explicit else HOME_VARIABLE
        raise InvalidInput(f"{source} names {home}, which is not a directory")
    return home


def locate(explicit: Path | str | None = None) -> Installation:
    """The installation in ``explicit`` / ``AKENER_HOME`` / the working directory."""
    home = home_directory(explicit)
    settings = Settings(_env_file=home / ENV_FILE)
    return Installation(home, anchored(settings, home))


def anchored(settings: Settings, home: Path) -> Settings:
    """``settings`` with a relative SQLite path made absolute under ``home``."""
    if not settings.is_sqlite:
        return settings
    url = make_url(settings.database_url)
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return settings
    if Path(database).is_absolute():
        return settings
    absolute = url.set(database=str((home / database).resolve()))
    return settings.model_copy(
        update={"database_url": absolute.render_as_string(hide_password=False)}
    )


def write_env_atomically(env_file: Path, secret: str) -> None:
    """Add a generated AKENER_SECRET_KEY to ``env_file`` without ever leaving it half written:
    a private temporary file is written and fsynced, renamed over the old one, and the
    directory fsynced so the rename survives a crash."""
    existing = env_file.read_text() if env_file.exists() else ""
    sep = "" if not existing or existing.endswith("\n") else "\n"
    content = f"{existing}{sep}AKENER_SECRET_KEY={secret}\n".encode()
    temporary = env_file.with_name(f".{env_file.name}.{os.getpid()}.tmp")
    with os.fdopen(os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE), "wb") as f:
        f.write(content)
        f.flush()
        os.fsync(f.fileno())
    try:
        os.replace(temporary, env_file)
    except OSError:
        temporary.unlink(missing_ok=True)
        raise
    directory = os.open(env_file.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
