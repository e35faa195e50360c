"""The trust tools: plugins that show why the skip core decided as it did, and check it.

:mod:`.explain` (``--unchanged-explain``: which input or facet changed), :mod:`.verify`
(``--unchanged-verify``: run every test and fail on a false skip) and :mod:`.audit`
(``--unchanged-audit``: the repository files a test reads that its inputs do not cover). Each
imports the session plugin's module (:mod:`pytest_unchanged.selection`), never the reverse.
"""
