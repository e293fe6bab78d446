"""QR codes for enrolment posters (segno): the URL customers scan to join a program."""
from __future__ import annotations

import io

import segno
from flask import current_app

from ..models import LoyaltyProgram


def enrolment_url(program: LoyaltyProgram) -> str:
    return f"{current_app.config['PUBLIC_BASE_URL']}/p/{program.slug}"


def _code(program: LoyaltyProgram):
    # Error correction "Q" survives a crumpled or partly covered poster.
    return segno.make(enrolment_url(program), error="q", micro=False)


def png(program: LoyaltyProgram, scale: int = 10) -> bytes:
    out = io.BytesIO()
    _code(program).save(out, kind="png", scale=scale, border=4)
    return out.getvalue()


def svg(program: LoyaltyProgram, scale: int = 10) -> bytes:
    out = io.BytesIO()
    _code(program).save(out, kind="svg", scale=scale, border=4, xmldecl=True, title=program.name,
                        svgclass=None, lineclass=None)
    return out.getvalue()
