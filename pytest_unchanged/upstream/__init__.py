"""The upstream watcher: fetch an upstream repository, compare the tree OIDs of watched paths
with the last verified state, install and test a moved commit, and report what touched them.

Modules: :mod:`.config` (the ``[tool.pytest-unchanged.upstream.NAME]`` tables), :mod:`.state`
(the state file: verified and failing commits per ref), :mod:`.cache` (the fetch cache, opened
without searching parents), :mod:`.progress` (fetch progress lines), :mod:`.fetch` (fetching
and comparing), :mod:`.build` (a build tree of one commit, its version), :mod:`.report` (the
commits that touched each path, the patch of the watched paths, the text report),
:mod:`.formats` (markdown and JSON), :mod:`.nox_session` (the nox session) and
:mod:`.cli` (the ``upstream`` command group).
"""
