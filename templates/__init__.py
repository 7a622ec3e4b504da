"""Jinja2 templates, installed as ``hwgen.templates`` (see pyproject.toml); no Python here."""
