"""A pytest plugin (pyproject's addopts): the repository's root is the package midibridge itself (pyproject's
package-dir), installed and imported as `midibridge`. pytest would collect the root as a test package named after the
clone's folder, and import its __init__.py under that name, which fails wherever the folder is no Python name
(`midibridge-main`, mktemp's `tmp.XXXX`): the root is collected as a plain directory instead."""

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_collect_directory(path, parent):
    if path == parent.config.rootpath:
        return pytest.Dir.from_parent(parent, path=path)
    return None
