"""Build step: compile the translation catalogues (``.po`` → ``.mo``) into every wheel and install.

The ``.mo`` files are build output (not committed). Without them an installed portal answers in English under
``<html lang="fr">``; so ``pip wheel .`` / ``pip install .`` compile them into the wheel, and an editable install
(``pip install -e .``) compiles them next to their ``.po`` in the checkout. Everything else is in pyproject.toml.
Babel comes from ``[build-system] requires``.
"""
from __future__ import annotations

import os
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
TRANSLATIONS = Path("portal") / "translations"


class build_py_with_catalogues(build_py):  # noqa: N801 - setuptools' naming
    def run(self):
        super().run()
        from babel.messages.mofile import write_mo
        from babel.messages.pofile import read_po

        # An editable install reads the package from the checkout, a wheel from build_lib.
        target = ROOT if getattr(self, "editable_mode", False) else Path(self.build_lib)
        for po in sorted((ROOT / TRANSLATIONS).glob("*/LC_MESSAGES/*.po")):
            lang = po.parent.parent.name
            mo = target / po.relative_to(ROOT).with_suffix(".mo")
            mo.parent.mkdir(parents=True, exist_ok=True)
            with open(po, "rb") as handle:
                catalogue = read_po(handle, locale=lang)
            partial = mo.with_name(f".{mo.name}.{os.getpid()}")
            with open(partial, "wb") as handle:
                write_mo(handle, catalogue, use_fuzzy=False)
            os.replace(partial, mo)


setup(cmdclass={"build_py": build_py_with_catalogues})
