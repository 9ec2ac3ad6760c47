"""What a MySQL error means to the registrar: the rows are at fault (RowsRejected), another
transaction was (WriteConflict), the user may not (a message saying what to run), or the
server cannot be used now (StoreUnavailable); and its text, without the driver's dressing
and never with a secret."""

from __future__ import annotations

import pymysql

from ..store import RowsRejected

# MySQL error numbers that mean "not allowed to", as opposed to "cannot reach".
DENIED = {1044, 1142, 1227}
# Refused for another transaction's sake, the connection still good: a deadlock or a Galera
# certification failure (1213), a lock wait timeout (1205).
CONFLICT = {1213, 1205}
# Data errors: the rows are at fault, not the server.
DATA = {1048, 1264, 1366, 1406, 1265}


def data_error(err: BaseException) -> bool:
    """The rows are at fault, not the server."""
    return isinstance(err, (UnicodeError, OverflowError, RowsRejected)) or (
        isinstance(err, pymysql.MySQLError) and code(err) in DATA)


def code(err: BaseException) -> int:
    args = getattr(err, "args", ())
    return args[0] if args and isinstance(args[0], int) else 0


def reason(err: BaseException) -> str:
    """The server's message without the driver's tuple dressing (never holds a password)."""
    if isinstance(err, UnicodeError):
        return f"a value is not valid UTF-8 text ({type(err).__name__})"
    args = getattr(err, "args", ())
    if len(args) >= 2:
        return f"{args[1]} (MySQL error {args[0]})"
    return str(err) or type(err).__name__
