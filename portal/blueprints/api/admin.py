"""Admin API: /api/v1/admin/loyalty — platform operators' keys only."""
from __future__ import annotations

from flask import Blueprint
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload, selectinload

from ...extensions import db
from ...models import LoyaltyProgram
from ...services import stats
from ...services.serializers import program_to_dict
from .common import authenticate, query_int

bp = Blueprint("admin_api", __name__, url_prefix="/admin/loyalty")


@bp.before_request
def _auth():
    authenticate("admin")


@bp.get("/programs")
def programs():
    page = query_int("page", 1, 1, 1_000_000)
    per_page = query_int("per_page", 50, 1, 200)
    total = db.session.scalar(select(func.count()).select_from(LoyaltyProgram))
    rows = db.session.scalars(select(LoyaltyProgram).order_by(LoyaltyProgram.id)
                              .options(joinedload(LoyaltyProgram.vendor), selectinload(LoyaltyProgram.rewards))
                              .limit(per_page).offset((page - 1) * per_page)).all()
    figures = stats.program_figures([p.id for p in rows])
    items = []
    for program in rows:
        item = program_to_dict(program)
        item["figures"] = figures[program.id]
        items.append(item)
    return {"programs": items, "page": page, "per_page": per_page, "total": total}


@bp.get("/stats")
def platform_stats():
    return stats.platform_stats()
