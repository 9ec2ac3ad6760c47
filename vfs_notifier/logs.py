"""Where log lines go: journald (or stderr), and a dated file rotated daily.

Under systemd, stderr already is the journal: writing there too would put every line
in twice, so the service uses exactly one of journald and stderr. The file keeps the
earlier service's name, DD-MM-YYYY_vfs_tusker_notifier_videos.log, 30 of them kept.
A log file that cannot be written never stops registration: the failure is said once
on the other channel, and the file is tried again at each housekeeping round.
"""

from __future__ import annotations

import datetime
import glob
import logging
import logging.handlers
import os
import sys
import time
from typing import Mapping, Optional

IDENTIFIER = "vfs-notifier"
FILE_SUFFIX = "_vfs_tusker_notifier_videos.log"
KEEP_FILES = 30
LINE_FORMAT = "%(asctime)s %(levelname)s %(message)s"

log = logging.getLogger("vfs_notifier")


class LineFormatter(logging.Formatter):
    """The one line format of stderr and the file, made once per record and shared.

    A burst logs a line per file through two handlers: formatting each record once, and
    its timestamp once a second, keeps logging from costing more than the rows.
    """

    def __init__(self) -> None:
        super().__init__(LINE_FORMAT)
        self._second = -1
        self._stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: Optional[str] = None) -> str:
        second = int(record.created)
        if second != self._second:
            self._second, self._stamp = second, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        return f"{self._stamp},{int(record.msecs):03d}"

    def format(self, record: logging.LogRecord) -> str:
        line = record.__dict__.get("_vfs_line")
        if line is None:
            line = record._vfs_line = super().format(record)  # type: ignore[attr-defined]
        return line


LINE_FORMATTER = LineFormatter()


def dated_name(directory: str, day: datetime.date) -> str:
    return os.path.join(directory, day.strftime("%d-%m-%Y") + FILE_SUFFIX)


class _FlushedPerTurn:
    """A stream handler that leaves flushing to `Logs.flush`, once per loop turn: a burst
    of registrations then costs one write, not one per line."""

    def flush(self) -> None:
        pass  # logging calls this after every record

    def flush_now(self) -> None:
        super().flush()  # type: ignore[misc]


class _StderrHandler(_FlushedPerTurn, logging.StreamHandler):
    pass


class DatedFileHandler(_FlushedPerTurn, logging.handlers.TimedRotatingFileHandler):
    """Writes to today's dated file and starts the next day's at midnight.

    TimedRotatingFileHandler renames the active file at rollover (its `namer` and
    `rotator` hooks name the *old* file); here the active file itself carries the date,
    so rollover only switches files and prunes the oldest.
    """

    last_said = ""   # the last failure said, across reopenings: each is said once

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.broken = ""   # why the file cannot be written, once said
        super().__init__(dated_name(directory, datetime.date.today()), when="midnight",
                         backupCount=KEEP_FILES, encoding="utf-8", delay=False)

    def doRollover(self) -> None:
        if self.stream:
            self.stream.close()
            self.stream = None  # type: ignore[assignment]
        self.baseFilename = dated_name(self.directory, datetime.date.today())
        self.rolloverAt = self.computeRollover(int(time.time()))
        self._prune()
        self.stream = self._open()

    def _prune(self) -> None:
        def day(path: str) -> datetime.date:
            try:
                return datetime.datetime.strptime(os.path.basename(path)[:10], "%d-%m-%Y").date()
            except ValueError:
                return datetime.date.min
        files = sorted(glob.glob(os.path.join(glob.escape(self.directory), "??-??-????" + FILE_SUFFIX)),
                       key=day)
        for old in files[:-KEEP_FILES]:
            try:
                os.remove(old)
            except OSError:
                pass

    def handleError(self, record: logging.LogRecord) -> None:
        # A full disk or a vanished directory: say it once on the other channel, not
        # a traceback per line; registration goes on regardless.
        problem = str(sys.exc_info()[1])
        self.broken = problem
        if problem != DatedFileHandler.last_said:
            DatedFileHandler.last_said = problem
            _say_elsewhere(f"log file {self.baseFilename} cannot be written ({problem}); "
                           f"lines go to journald/stderr only until it can")


def _say_elsewhere(message: str) -> None:
    for handler in log.handlers:
        if not isinstance(handler, DatedFileHandler):
            handler.handle(logging.LogRecord(log.name, logging.WARNING, __file__, 0, message, None, None))


def journal_is_stderr(env: Mapping[str, str] = os.environ) -> bool:
    """True when systemd connected stderr to the journal (see systemd.exec(5), $JOURNAL_STREAM)."""
    stream = env.get("JOURNAL_STREAM", "")
    try:
        device, inode = (int(part) for part in stream.split(":"))
        st = os.fstat(sys.stderr.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (device, inode)


class Logs:
    """The service's log handlers; `configure` may be called again on reload."""

    def __init__(self) -> None:
        self.file_handler: Optional[DatedFileHandler] = None
        self.directory = ""
        self.console: Optional[logging.Handler] = None

    def configure(self, directory: str, level: str, env: Mapping[str, str] = os.environ) -> None:
        log.setLevel(getattr(logging, level.upper()))
        log.propagate = False
        if self.console is None:
            self.console = _console_handler(env)
            log.addHandler(self.console)
        if directory != self.directory:
            self._drop_file()
            self.directory = directory
        self.retry_file()

    def retry_file(self) -> None:
        """Open the log file if it is not open (or could not be written): each housekeeping round."""
        handler = self.file_handler
        if handler is not None and not handler.broken:
            return
        if handler is not None:
            self._drop_file()
        try:
            os.makedirs(self.directory, exist_ok=True)
            handler = DatedFileHandler(self.directory)
        except OSError as err:
            if self.directory and getattr(self, "_said", "") != str(err):
                self._said = str(err)
                log.warning("log file in %s cannot be opened (%s); lines go to journald/stderr only "
                            "until it can", self.directory, err.strerror or err)
            return
        handler.setFormatter(LINE_FORMATTER)
        self.file_handler = handler
        self._said = ""
        log.addHandler(handler)

    def _drop_file(self) -> None:
        if self.file_handler is not None:
            log.removeHandler(self.file_handler)
            try:
                self.file_handler.close()
            except OSError:
                pass
            self.file_handler = None

    def flush(self) -> None:
        """Write out what the handlers hold (the loop calls this at the end of each turn)."""
        for handler in (self.console, self.file_handler):
            if isinstance(handler, _FlushedPerTurn):
                try:
                    handler.flush_now()
                except (OSError, ValueError):
                    if isinstance(handler, DatedFileHandler):
                        handler.handleError(None)  # type: ignore[arg-type]

    def close(self) -> None:
        self.flush()
        self._drop_file()
        if self.console is not None:
            log.removeHandler(self.console)
            self.console = None


def _console_handler(env: Mapping[str, str]) -> logging.Handler:
    if journal_is_stderr(env):
        try:
            from systemd.journal import JournalHandler
            return JournalHandler(SYSLOG_IDENTIFIER=IDENTIFIER)
        except ImportError:
            pass
    handler = _StderrHandler(sys.stderr)
    handler.setFormatter(LINE_FORMATTER)
    return handler
