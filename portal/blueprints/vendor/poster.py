"""A printable enrolment poster (A4 / A5 via print CSS) and the QR code as PNG and SVG downloads."""
from __future__ import annotations

from flask import Response, g, request
from flask_babel import refresh

from ...services import programs, qr
from ...web import render
from . import bp
from .helpers import actor

SIZES = ("a4", "a5")


@bp.get("/programs/<int:program_id>/poster")
def program_poster(program_id):
    program = programs.get_program(actor(), program_id)
    size = request.args.get("size", "a4")
    size = size if size in SIZES else "a4"
    # The poster speaks the shop's language, whatever language the owner reads the portal in.
    g.force_locale = program.vendor.locale
    refresh()
    return render("vendor/poster.html", program=program, size=size, sizes=SIZES, url=qr.enrolment_url(program))


def _download(body: bytes, mimetype: str, filename: str) -> Response:
    response = Response(body, mimetype=mimetype)
    disposition = "attachment" if request.args.get("download") else "inline"
    response.headers["Content-Disposition"] = f'{disposition}; filename="{filename}"'
    response.headers["Cache-Control"] = "private, max-age=300"
    return response


@bp.get("/programs/<int:program_id>/qr.png")
def program_qr_png(program_id):
    program = programs.get_program(actor(), program_id)
    scale = max(2, min(40, request.args.get("scale", 10, type=int)))
    return _download(qr.png(program, scale), "image/png", f"{program.slug}-qr.png")


@bp.get("/programs/<int:program_id>/qr.svg")
def program_qr_svg(program_id):
    program = programs.get_program(actor(), program_id)
    return _download(qr.svg(program), "image/svg+xml", f"{program.slug}-qr.svg")
