"""Public API: /api/v1/loyalty — program information and self-enrolment (the wallet service joins here)."""
from __future__ import annotations

from flask import Blueprint, current_app, g

from ...extensions import limiter
from ...services import enrolment, programs
from ..public.views import program_enrol_limit
from ...services.errors import NotFound
from ...services.serializers import card_to_dict, program_to_dict
from ...services.validation import SLUG_RE
from .common import json_body

bp = Blueprint("public_api", __name__, url_prefix="/loyalty")


def _program(slug: str):
    if not SLUG_RE.fullmatch(slug):  # never a slug: no query (PostgreSQL refuses NUL in text, for one)
        raise NotFound()
    return programs.get_program_by_slug(slug, rewards=True)  # its answer and its cards' links show the catalog


@bp.get("/programs/<slug>")
def program(slug):
    return program_to_dict(_program(slug), public=True)


@bp.post("/programs/<slug>/enroll")
@limiter.limit(lambda: current_app.config["ENROLL_RATE_LIMIT"])
@program_enrol_limit
def enroll(slug):
    """201 with the new card; 202 with only a ``status`` when the email or phone has a card here already
    (``link_sent``: a sign-in link went to the address on file; ``ask_at_till``: phone only)."""
    program = _program(slug)
    g.fallback_locale = program.vendor.locale  # the caller's Accept-Language first
    result = enrolment.self_enroll(program, json_body())
    if not result.created:
        return {"status": result.status}, 202
    body = card_to_dict(result.card, include_customer=False)
    body.update(enrollment_links(result.card))
    return body, 201


def enrollment_links(card) -> dict:
    """card_url always; wallet links when the wallets are configured (filled in by the wallet module)."""
    from ...services.serializers import card_url

    links = {"card_url": card_url(card), "pkpass_url": None, "google_save_url": None}
    try:
        from ...services.wallet import links as wallet_links
    except ImportError:
        return links
    links.update(wallet_links.for_card(card))
    return links
