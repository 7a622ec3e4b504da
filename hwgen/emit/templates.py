"""Rendering the Jinja2 templates of ``templates/`` (docs/architecture.md §2).

The repository's ``templates/`` folder is installed as the package ``hwgen.templates`` (see
pyproject.toml), so the same loader finds it in a source checkout, an editable install and a
wheel. Templates are strict: an undefined variable is an error, never an empty string, and they
hold no arithmetic that Python could do; callers pass every value ready to print.
"""

from __future__ import annotations

import functools
import importlib.resources
from pathlib import Path

import jinja2

__all__ = ["TEMPLATE_DIR", "render", "render_file"]

#: The installed ``templates/`` folder (wheels install unzipped, so it is a real folder).
TEMPLATE_DIR = Path(str(importlib.resources.files("hwgen.templates")))


@functools.cache
def _environment(folder: Path) -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(folder),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                              trim_blocks=True, lstrip_blocks=True, autoescape=False)


def render(template: str, **context) -> str:
    """Render ``template``, a path relative to :data:`TEMPLATE_DIR`."""
    return _environment(TEMPLATE_DIR).get_template(template).render(**context)


def render_file(path: Path, **context) -> str:
    """Render the template file ``path`` (an engine's own template folder may lie anywhere)."""
    path = Path(path).resolve()
    return _environment(path.parent).get_template(path.name).render(**context)
