"""`calculate`: a safe arithmetic evaluator that walks the `ast` and never calls `eval`."""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

from agentstream import ToolError, tool

__all__ = ["MAX_EXPRESSION_LENGTH", "calculate", "evaluate"]

MAX_EXPRESSION_LENGTH = 200
"""Longer expressions are refused."""

Number = int | float

_MAX_MAGNITUDE = 10**300  # about the largest float; beyond it answers are not useful
_MAX_EXPONENT = 10_000
_MAX_FACTORIAL = 100
_MAX_DEPTH = 100  # a guard for the recursion; the length limit binds first
_MAX_DIGITS = 400  # round()'s place: past 10**400 every bounded value rounds the same

# Every operation is bounded before it runs: operands never exceed _MAX_MAGNITUDE (each
# result is checked), powers are estimated with logarithms first, factorial takes at
# most 100 and round() at most 400 places, so no expression of 200 characters can make
# the worker thread compute for long (which no timeout could stop).

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}
_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}


def _factorial(n: Number) -> int:
    if isinstance(n, float) and not n.is_integer():
        raise ToolError("factorial() takes a whole number")
    if not 0 <= n <= _MAX_FACTORIAL:
        raise ToolError(f"factorial() takes a whole number from 0 to {_MAX_FACTORIAL}")
    return math.factorial(int(n))


def _log(x: Number, base: Number = math.e) -> float:
    return math.log(x, base)


def _round(x: Number, ndigits: Number | None = None) -> Number:
    """`round()`, checking `ndigits` first: for an int, `round` computes 10**-ndigits."""
    if ndigits is None:
        return round(x)
    if isinstance(ndigits, float):
        if not ndigits.is_integer():
            raise ToolError("round() takes a whole number of digits")
        ndigits = int(ndigits)
    if isinstance(x, int) and ndigits < -_MAX_DIGITS:
        return 0  # |x| <= 10**300 (see _bounded): it rounds to 0 at any such place
    return round(x, max(-_MAX_DIGITS, min(ndigits, _MAX_DIGITS)))


_FUNCTIONS: dict[str, Callable[..., Number]] = {
    "sqrt": math.sqrt,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "asin": math.asin,
    "acos": math.acos,
    "atan": math.atan,
    "log": _log,
    "ln": math.log,
    "log10": math.log10,
    "log2": math.log2,
    "exp": math.exp,
    "abs": abs,
    "round": _round,
    "floor": math.floor,
    "ceil": math.ceil,
    "factorial": _factorial,
    "radians": math.radians,
    "degrees": math.degrees,
}


@tool
def calculate(expression: str) -> dict[str, Any]:
    """Evaluate an arithmetic expression exactly and safely, like a pocket calculator.

    Supports + - * / // % ** (or ^), parentheses, whole and decimal numbers, the
    constants pi, e and tau, and sqrt, sin, cos, tan, asin, acos, atan, log, ln, log10,
    log2, exp, abs, round, floor, ceil, factorial, radians and degrees.

    Args:
        expression: The expression, e.g. "(12 + 30) * 2" or "sqrt(2) / 2".
    """
    return {"expression": expression, "result": evaluate(expression)}


def evaluate(expression: str) -> Number:
    """The value of `expression`; raises `ToolError` with a clear message if it has none."""
    text = expression.strip().replace("^", "**").replace("\u00d7", "*").replace("\u00f7", "/")
    if not text:
        raise ToolError("the expression is empty")
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ToolError(f"the expression is longer than {MAX_EXPRESSION_LENGTH} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise ToolError(f"not a valid arithmetic expression: {expression!r}") from None
    try:
        value = _eval(tree.body, 0)
    except ZeroDivisionError:
        raise ToolError("division by zero") from None
    except OverflowError:
        raise ToolError("the result is too large") from None
    except (ValueError, TypeError) as exc:  # math domain errors, complex results, ...
        raise ToolError(f"cannot evaluate {expression!r}: {exc}") from None
    return value


def _eval(node: ast.AST, depth: int) -> Number:
    if depth > _MAX_DEPTH:
        raise ToolError("the expression is nested too deeply")
    depth += 1
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise ToolError(f"unsupported value {node.value!r}: only numbers are allowed")
        return _bounded(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left, depth), _eval(node.right, depth)
        if isinstance(node.op, ast.Pow):
            _check_power(left, right)
        return _bounded(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _bounded(_UNARY[type(node.op)](_eval(node.operand, depth)))
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        raise ToolError(f"unknown name {node.id!r}; known constants: {', '.join(_CONSTANTS)}")
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        function = _FUNCTIONS.get(node.func.id)
        if function is None:
            known = ", ".join(_FUNCTIONS)
            raise ToolError(f"unknown function {node.func.id!r}; known functions: {known}")
        args = [_eval(arg, depth) for arg in node.args]
        try:
            return _bounded(function(*args))
        except TypeError:
            raise ToolError(f"wrong number of arguments for {node.func.id}()") from None
    raise ToolError(f"unsupported syntax: {ast.unparse(node)!r}")


def _check_power(base: Number, exponent: Number) -> None:
    """Refuse powers whose result would be astronomically large before computing them."""
    if abs(exponent) > _MAX_EXPONENT:
        raise ToolError(f"the exponent {exponent} is too large (at most {_MAX_EXPONENT})")
    if abs(base) > 1 and exponent > 0 and exponent * math.log10(abs(base)) > 300:
        raise ToolError("the result is too large")


def _bounded(value: Any) -> Number:
    if isinstance(value, int) and abs(value) > _MAX_MAGNITUDE:
        raise ToolError("the result is too large")
    if isinstance(value, float) and math.isinf(value):
        raise ToolError("the result is too large")
    if isinstance(value, complex):
        raise ToolError("the result is a complex number, which this calculator does not support")
    if not isinstance(value, int | float):
        raise ToolError(f"the result is not a number: {value!r}")
    return value
