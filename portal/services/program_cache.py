"""The card's program and vendor for the stamp path, from a per-process copy checked by the card's own statement.

Every stamp, redemption and points entry locks its card (``SELECT … FOR UPDATE``) and needs the card's program
(the rules) and the program's vendor (the time zone). Reading them with the card, as a join, costs about a third
of the app's time per stamp: some 50 columns described by the driver and three ORM objects built on every
request, for rows that change a few times a year. Instead:

* ``config_version`` holds one number, raised by triggers on ``loyalty_programs`` and ``vendors`` in the very
  transaction that changes either (migration ``perf04``), whatever path makes the change;
* the card's lock statement reads that number with the card (a scalar subquery of the same statement, so the
  same snapshot that a join would have read the program in);
* each process keeps, per program, a detached copy of the program with its vendor and the number read in the
  same statement as that copy. When the card statement's number is the copy's, no change to any program or
  vendor has been committed between the two reads: the copy is exactly what the join would have returned, and
  it is merged into the session without SQL. Otherwise the program is read again and kept with its number.

Nothing is trusted across a change: there is no time-to-live to tune and no listener to lose, on PostgreSQL and
SQLite alike. A program the session already holds (a page that showed it first) is used as it is.
"""
from __future__ import annotations

from sqlalchemy import BigInteger, CheckConstraint, Column, Integer, Table, bindparam, select
from sqlalchemy.orm import Session, lazyload
from sqlalchemy.orm.attributes import set_committed_value

from ..extensions import db
from ..models import LoyaltyCard, LoyaltyProgram

config_version = Table(
    "config_version", db.metadata,
    Column("id", Integer, primary_key=True),
    Column("version", BigInteger, nullable=False),
    CheckConstraint("id = 1", name="one_row"),
)

#: The configuration's version, as a column of the statement that reads the card.
VERSION_NOW = select(config_version.c.version).where(config_version.c.id == 1)
VERSION = VERSION_NOW.scalar_subquery()

MAX_PROGRAMS = 5_000
_VERSION_READ = "config_version_read"

_LOAD = (select(LoyaltyProgram, VERSION).where(LoyaltyProgram.id == bindparam("program_id"))
         .options(lazyload(LoyaltyProgram.rewards)))  # the vendor comes joined (the relationship's default)

#: program id -> (version read with it, detached program with its vendor). Only ever replaced, never changed:
#: the copies are read (merged from) by every request of the process, and never attached to a session.
_copies: dict[int, tuple[int, LoyaltyProgram]] = {}


def attach_program(card: LoyaltyCard, version: int | None) -> LoyaltyProgram:
    """Give ``card`` (just read with ``version``) its program and vendor in the current session. No version (the
    row is missing: a database restored without it) means no copy is trusted or kept."""
    session = db.session()
    session.info[_VERSION_READ] = version
    held = session.identity_map.get(session.identity_key(LoyaltyProgram, card.program_id))
    if held is not None:
        program = held
    else:
        copy = _copies.get(card.program_id)
        if copy is None or version is None or copy[0] != version:
            copy = _read(session, card.program_id)
        program = session.merge(copy[1], load=False)
    set_committed_value(card, "program", program)
    return program


def version_read() -> int | None:
    """The configuration's version read with the last card locked in this session (None: none since
    ``forget_version_read``)."""
    return db.session().info.get(_VERSION_READ)


def forget_version_read() -> None:
    db.session().info.pop(_VERSION_READ, None)


def _read(session, program_id: int) -> tuple[int, LoyaltyProgram]:
    """Read the program, its vendor and the version in one statement of the request's own transaction, through a
    second session on the same connection, so the objects kept are nobody's: the request gets a merged copy."""
    with Session(bind=session.connection()) as reader:
        program, version = reader.execute(_LOAD, {"program_id": program_id}).one()
    copy = (version, program)
    if version is not None:
        if len(_copies) >= MAX_PROGRAMS:
            _copies.clear()
        _copies[program_id] = copy
    return copy


def forget() -> None:
    """Drop every copy (tests that rebuild the database)."""
    _copies.clear()
