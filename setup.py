"""The package list, which pyproject.toml cannot express: every ``hwgen*`` package found under
``hwgen/`` plus the two repository folders installed inside it (``templates/`` as
``hwgen.templates``, ``sim/`` as ``hwgen.testbench``; see ``[tool.setuptools.package-dir]`` in
pyproject.toml). Everything else is declared in pyproject.toml."""

from setuptools import find_packages, setup

setup(packages=find_packages(include=["hwgen", "hwgen.*"]) + ["hwgen.templates",
                                                              "hwgen.testbench"])
