"""Rendering the Jinja2 templates under ``templates/`` (DESIGN.md §2).

Templates are strict: an undefined variable is an error, never an empty string, and they hold no
arithmetic that Python could do; callers pass every value ready to print.
"""

from __future__ import annotations

import functools
from pathlib import Path

import jinja2

__all__ = ["TEMPLATE_DIR", "render"]

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "templates"


@functools.cache
def _environment() -> jinja2.Environment:
    if not TEMPLATE_DIR.is_dir():
        raise RuntimeError(f"hwgen templates not found at {TEMPLATE_DIR}; install hwgen from its "
                           f"source tree (pip install -e .)")
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                              trim_blocks=True, lstrip_blocks=True, autoescape=False)


def render(template: str, **context) -> str:
    return _environment().get_template(template).render(**context)
