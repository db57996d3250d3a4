"""Steering the query planners of SQLite and PostgreSQL away from an index.

Both planners pick an index from the shape of the WHERE clause, and without statistics (a new
deployment, SQLite that never ran ANALYZE) or with misleading ones they sometimes pick one that
matches most of the table: ``parent_id IS NULL`` is true of every top-level alert, ``status
IN ('done', 'dead')`` of almost every outbox row. A condition that must only filter the rows
another index found is written through :func:`unindexed`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func


def unindexed(col: Any) -> Any:
    """``col`` as an expression no index serves (``coalesce(col, col)``, the same value, the
    same type), so the planner cannot lead with an index on it."""
    return func.coalesce(col, col, type_=col.type)
