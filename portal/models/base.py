from __future__ import annotations

import datetime as dt

from sqlalchemy import Integer
from sqlalchemy.orm import Mapped, mapped_column

from ..storage.types import UTCDateTime
from ..extensions import db
from ..clock import now


class TimestampMixin:
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=now, nullable=False)


def pk() -> Mapped[int]:
    return mapped_column(Integer, primary_key=True)


Model = db.Model
