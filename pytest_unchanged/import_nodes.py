"""Small readers of Python syntax trees for :mod:`.import_syntax`: literal arguments, line
numbers, calls by name, and whether a node reads or changes ``sys.path``."""

from __future__ import annotations

import ast

SYS_PATHS = frozenset({"path", "meta_path", "path_hooks", "path_importer_cache"})
SYS_TARGETS = [[name] for name in SYS_PATHS]
READ_METHODS = frozenset({"index", "count", "copy", "__contains__", "__len__", "__iter__"})
READ_FUNCTIONS = frozenset(
    {"len", "list", "tuple", "set", "frozenset", "sorted", "print", "str", "repr", "any", "all",
     "enumerate", "iter", "reversed", "join", "isinstance", "bool"}
)  # fmt: skip


def is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def is_mock(func: ast.expr) -> bool:
    """``patch`` itself, or ``mock.patch``, ``mocker.patch``, ``unittest.mock.patch``."""
    if isinstance(func, ast.Name):
        return func.id == "patch"
    if isinstance(func, ast.Attribute) and func.attr == "patch":
        owner = func.value
        return (isinstance(owner, ast.Name) and owner.id in ("mock", "mocker")) or (
            isinstance(owner, ast.Attribute) and owner.attr in ("mock", "mocker")
        )
    return False


def sys_path_name(node: ast.AST) -> str | None:
    """``"sys.path"`` for ``sys.path`` (any name, checked against the file's aliases later)."""
    if isinstance(node, ast.Attribute) and node.attr in SYS_PATHS:
        owner = node.value
        if isinstance(owner, ast.Name):
            return f"{owner.id}.{node.attr}"
        if isinstance(owner, ast.Attribute) and owner.attr == "sys":
            return f"sys.{node.attr}"
    return None


def reads_only(parent: ast.AST, child: ast.AST) -> bool:
    """Whether ``parent`` only reads the ``sys.path``-like ``child``."""
    if isinstance(child, ast.Attribute) and not isinstance(child.ctx, ast.Load):
        return False
    if isinstance(parent, ast.Compare | ast.FormattedValue | ast.JoinedStr):
        return True
    if isinstance(parent, ast.For | ast.comprehension):
        return parent.iter is child
    if isinstance(parent, ast.Subscript):
        return parent.value is child and isinstance(parent.ctx, ast.Load)
    if isinstance(parent, ast.Attribute):
        return parent.attr in READ_METHODS
    if isinstance(parent, ast.Call) and child is not parent.func:
        func = parent.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        return name in READ_FUNCTIONS
    return False


def argument(node: ast.Call, index: int, keyword: str) -> ast.expr | None:
    if len(node.args) > index and not any(isinstance(a, ast.Starred) for a in node.args):
        return node.args[index]
    return next((k.value for k in node.keywords if k.arg == keyword), None)


def literal(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def literals(node: ast.expr) -> list[str] | None:
    """The strings of a literal string or list/tuple/set of them; ``None`` when computed."""
    text = literal(node)
    if text is not None:
        return [text]
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        found: list[str] = []
        for element in node.elts:
            strings = literals(element)
            if strings is None:
                return None
            found.extend(strings)
        return found
    return None


def line(node: ast.AST) -> int:
    return int(getattr(node, "lineno", 0))
