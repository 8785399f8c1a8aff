"""Indicator definitions are written as small SQL expressions ("age BETWEEN 30 AND 59 AND NOT employed");
this module compiles them into Ibis expressions, so the same definition runs on DuckDB and on Spark.

Only a whitelisted subset of SQL is accepted: column names, literals, AND/OR/NOT, comparisons, BETWEEN,
IN, IS [NOT] NULL, + − × ÷, COALESCE, CASE WHEN, SQRT, ABS, LN, GREATEST, LEAST. Anything else is refused
with the offending text. Division by zero gives NULL (the value is unknown), the same on DuckDB and Spark.
"""

from __future__ import annotations

import operator
from collections.abc import Callable

import ibis
import ibis.expr.types as ir
import sqlglot
from sqlglot import exp


class DefinitionError(ValueError):
    """A catalogue expression that cannot be compiled (unknown column, unsupported SQL)."""


_BINARY: dict[type, Callable] = {
    exp.EQ: operator.eq,
    exp.NEQ: operator.ne,
    exp.GT: operator.gt,
    exp.GTE: operator.ge,
    exp.LT: operator.lt,
    exp.LTE: operator.le,
    exp.Add: operator.add,
    exp.Sub: operator.sub,
    exp.Mul: operator.mul,
    # a division by zero is unknown (NULL) on every engine: DuckDB would give ±inf or NaN, Spark NULL or an
    # error (ANSI mode)
    exp.Div: lambda a, b: a / b.nullif(0),
    exp.And: operator.and_,
    exp.Or: operator.or_,
}
_UNARY: dict[type, Callable] = {
    exp.Sqrt: lambda v: v.sqrt(),
    exp.Abs: lambda v: v.abs(),
    exp.Ln: lambda v: v.ln(),
}


def columns_of(text: str) -> set[str]:
    """Column names an expression uses."""
    return {c.name for c in _parse(text).find_all(exp.Column)}


def _parse(text: str) -> exp.Expression:
    try:
        return sqlglot.parse_one(text, read="duckdb")
    except sqlglot.errors.ParseError as e:
        raise DefinitionError(f"cannot parse {text!r}: {e}") from e


def compile_expr(text: str, table: ir.Table) -> ir.Value:
    """The Ibis expression for `text` over the columns of `table`."""
    return _compile(_parse(text), table, text)


def _compile(node: exp.Expression, t: ir.Table, text: str) -> ir.Value:
    if isinstance(node, exp.Paren):
        return _compile(node.this, t, text)
    if isinstance(node, exp.Column):
        if node.name not in t.columns:
            raise DefinitionError(f"{text!r}: unknown column {node.name!r}")
        return t[node.name]
    if isinstance(node, exp.Boolean):
        return ibis.literal(node.this)
    if isinstance(node, exp.Literal):
        if node.is_string:
            return ibis.literal(node.this)
        value = float(node.this)
        return ibis.literal(int(value) if value.is_integer() and "." not in node.this else value)
    if isinstance(node, exp.Null):
        return ibis.null()
    if isinstance(node, exp.Neg):
        return -_compile(node.this, t, text)
    if isinstance(node, exp.Not):
        return ~_compile(node.this, t, text)
    if type(node) in _BINARY:
        return _BINARY[type(node)](_compile(node.this, t, text), _compile(node.expression, t, text))
    if isinstance(node, exp.Between):
        return _compile(node.this, t, text).between(
            _compile(node.args["low"], t, text), _compile(node.args["high"], t, text)
        )
    if isinstance(node, exp.In):
        return _compile(node.this, t, text).isin([_compile(e, t, text) for e in node.expressions])
    if isinstance(node, exp.Is):
        inner = _compile(node.this, t, text)
        if isinstance(node.expression, exp.Null):
            return inner.isnull()
        raise DefinitionError(f"{text!r}: only IS NULL / IS NOT NULL are supported")
    if type(node) in _UNARY:
        return _UNARY[type(node)](_compile(node.this, t, text))
    if isinstance(node, exp.Greatest | exp.Least):
        args = [_compile(e, t, text) for e in (node.this, *node.expressions)]
        return (ibis.greatest if isinstance(node, exp.Greatest) else ibis.least)(*args)
    if isinstance(node, exp.Coalesce):
        return ibis.coalesce(_compile(node.this, t, text), *[_compile(e, t, text) for e in node.expressions])
    if isinstance(node, exp.Case):
        cases = [(_compile(w.this, t, text), _compile(w.args["true"], t, text)) for w in node.args["ifs"]]
        default = _compile(node.args["default"], t, text) if node.args.get("default") else None
        return ibis.cases(*cases, else_=default)
    raise DefinitionError(f"{text!r}: {node.sql()!r} ({type(node).__name__}) is not supported in definitions")
