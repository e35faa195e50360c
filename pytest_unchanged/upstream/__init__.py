"""The upstream watcher: fetch an upstream repository, compare the tree OIDs of watched paths
with the last verified state, install and test a moved commit, and report what touched them.

Modules: :mod:`.config` (the ``[tool.pytest-unchanged.upstream.NAME]`` tables), :mod:`.state`
(the verified state file), :mod:`.fetch` (fetching, comparing, archiving a commit),
:mod:`.report` (the commits that touched each path), :mod:`.nox_session` (the nox session) and
:mod:`.cli` (the ``upstream`` command group).
"""
