"""`not_indexed(column)`: a column SQLite does not choose an index by.

SQLite plans without statistics. Asked for the values of a few regions for one campaign
and indicator, it searches the (campaign, indicator) index, every region's values of
that pair, when the (region, campaign, indicator) index would find the few directly.
Written `+column`, a condition no longer offers its index, and the regions drive the
search. Where the regions are the selective part (a caller's own, `region__in`, the
children of a few parents), conditions on campaign and indicator go through this.
PostgreSQL chooses from its statistics and gets the column itself.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import Integer


class not_indexed(FunctionElement[int]):
    """The column, kept out of SQLite's choice of index (its unary `+`)."""

    type = Integer()
    name = "not_indexed"
    inherit_cache = True


@compiles(not_indexed)
def _column(element: not_indexed, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(not_indexed, "sqlite")
def _unary_plus(element: not_indexed, compiler: SQLCompiler, **kw: Any) -> str:
    return f"(+{compiler.process(element.clauses, **kw)})"
