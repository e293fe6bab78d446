"""Public API: /api/v1/loyalty — program information and self-enrolment (the wallet service joins here)."""
from __future__ import annotations

from flask import Blueprint, current_app, g

from ...extensions import limiter
from ...services import cards, programs
from ...services.errors import NotFound
from ...services.serializers import card_to_dict, program_to_dict
from ...services.validation import SLUG_RE
from .common import json_body

bp = Blueprint("public_api", __name__, url_prefix="/loyalty")


def _program(slug: str):
    if not SLUG_RE.fullmatch(slug):  # never a slug: no query (PostgreSQL refuses NUL in text, for one)
        raise NotFound()
    return programs.get_program_by_slug(slug)


@bp.get("/programs/<slug>")
def program(slug):
    return program_to_dict(_program(slug), public=True)


@bp.post("/programs/<slug>/enroll")
@limiter.limit(lambda: current_app.config["ENROLL_RATE_LIMIT"])
def enroll(slug):
    program = _program(slug)
    g.fallback_locale = program.vendor.locale  # the caller's Accept-Language first
    card, created = cards.enroll(program, json_body())
    body = card_to_dict(card, include_customer=False)
    body.update(enrollment_links(card))
    return body, 201 if created else 200


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
