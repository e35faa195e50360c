"""What a collected item's key is derived from, worked out once per group of items sharing it.

The items of one parametrized test function (click's suite has 31,000 of them in one module)
share their parent, function, fixture closure and marks, so they share their ``depends_on``
arguments, their inputs and the files defining them: :class:`Derivation` asks the resolver once
per such group, and only the nodeid (and so the key) is the item's own. An item whose inputs a
``pytest_unchanged_item_inputs`` implementation extends is derived on its own (the hook is
called per item).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .inputs import InputError, ItemInputs, Resolver

if TYPE_CHECKING:
    import pytest

    from .fastpath import Signature

__all__ = ["Derivation"]


class Derivation:
    """The inputs and signature of items, cached per group (see the module docstring)."""

    def __init__(self, resolver: Resolver, hook: object, extend: bool) -> None:
        self.resolver = resolver
        self.hook = hook
        self.extend = extend
        self._groups: dict[tuple[object, ...], tuple[ItemInputs, Signature] | InputError] = {}

    def of(self, item: pytest.Item) -> tuple[ItemInputs, Signature]:
        """Return the inputs of ``item`` and what they were derived from besides its module.

        Raises :class:`InputError` for a bad ``depends_on`` mark or a path outside the
        repository.
        """
        if self.extend:
            return self._derive(item)
        # The same parent, function (a parametrized function's items share its name), fixture
        # closure and mark objects give the same marks, inputs and defining files.
        group = (
            item.parent,
            type(item),
            getattr(item, "originalname", item.name),
            id(getattr(item, "_fixtureinfo", None)),
            tuple(map(id, item.own_markers)),
        )
        found = self._groups.get(group)
        if found is None:
            try:
                found = self._derive(item)
            except InputError as error:
                found = error
            self._groups[group] = found
        if isinstance(found, InputError):
            raise found
        return found

    def _derive(self, item: pytest.Item) -> tuple[ItemInputs, Signature]:
        resolver = self.resolver
        hook = self.hook
        extra = [p for r in hook(item=item) if r for p in r] if self.extend else []  # type: ignore[operator]
        declared = resolver.declared(item)
        inputs = resolver.item_inputs(item, declared, extra)
        arguments = None if declared is None else tuple(declared)
        return inputs, (arguments, tuple(extra), resolver.defining(item))
