"""CSV import of existing customers into a program, with a preview and per-row errors.

Each row goes through the same rules as an enrolment by the shop (``cards.enroll_by_vendor`` →
``cards.parse_customer``) inside its own savepoint, so a bad row is reported and skipped without touching the
others. The preview runs exactly the same code and the caller rolls the transaction back.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from flask_babel import lazy_gettext as _l

from ..extensions import db
from .actor import Actor
from .cards import enroll_by_vendor
from .errors import DomainError, ValidationError
from .programs import get_program

MAX_ROWS = 5000
ALIASES = {"name": "name", "customer_name": "name", "full name": "name", "nom": "name",
           "email": "email", "e-mail": "email", "customer_email": "email", "mail": "email",
           "phone": "phone", "telephone": "phone", "téléphone": "phone", "mobile": "phone", "customer_phone": "phone",
           "locale": "locale", "language": "locale", "langue": "locale", "sprache": "locale"}


@dataclass
class ImportRow:
    line: int
    data: dict
    status: str = "new"  # new | existing | invalid
    errors: dict = field(default_factory=dict)
    card_number: str | None = None


@dataclass
class ImportReport:
    rows: list[ImportRow]

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r.status == status)

    @property
    def counts(self) -> dict:
        return {s: self.count(s) for s in ("new", "existing", "invalid")}


def read_csv(text: str) -> list[tuple[int, dict]]:
    """(line number, {name, email, phone, locale}) for each non-empty row. Comma or semicolon separated."""
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise ValidationError(fields={"file": [_l("The file is empty.")]})
    first = text.splitlines()[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        raise ValidationError(fields={"file": [_l("This is not a CSV file.")]})
    columns = [ALIASES.get(h.strip().lower()) for h in header]
    if not any(columns):
        raise ValidationError(fields={"file": [_l("The first line must name the columns: name, email, phone, "
                                                  "locale.")]})
    rows = []
    try:
        for values in reader:
            if not any(v.strip() for v in values):
                continue
            data = {}
            for column, value in zip(columns, values):
                if column:
                    data[column] = value.strip()
            rows.append((reader.line_num, data))
            if len(rows) > MAX_ROWS:
                raise ValidationError(fields={"file": [_l("At most %(n)s customers per file.", n=MAX_ROWS)]})
    except csv.Error:
        raise ValidationError(fields={"file": [_l("This is not a CSV file.")]})
    return rows


def run(actor: Actor, program_id: int, text: str) -> ImportReport:
    """Enrol every valid row; the caller commits (import) or rolls back (preview)."""
    program = get_program(actor, program_id)
    report = ImportReport(rows=[])
    for line, data in read_csv(text):
        row = ImportRow(line=line, data=data)
        report.rows.append(row)
        if not (data.get("name") or data.get("email") or data.get("phone")):
            row.status = "invalid"
            row.errors = {"name": [str(_l("Give a name, an email address or a phone number."))]}
            continue
        try:
            with db.session.begin_nested():
                card, created = enroll_by_vendor(actor, {**data, "program_id": program.id})
        except DomainError as error:
            row.status = "invalid"
            row.errors = {k: [str(m) for m in v] for k, v in (error.fields or {}).items()} or {
                "name": [error.render_message()]}
            continue
        row.status = "new" if created else "existing"
        row.card_number = card.card_number
    return report
