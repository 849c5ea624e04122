"""What a student's function returns or raises, carried back to the kernel as plain data (JSON).

The student's process may hold anything, and anything it sends back is read by the notebook
kernel. Pickle would let a returned object run code there (`__reduce__`), so the values travel as
JSON with a tag for each container JSON lacks, and are rebuilt from a closed list of types:

    None, bool, int, float, str       as themselves
    bytes, tuple, set, dict           {"bytes": "..."}, {"tuple": [...]}, {"set": [...]}, {"dict": [[k, v], ...]}
    an exception                      {"exception": name, "base": builtin base, "args": [...], ...}
    anything else                     {"object": type name, "repr": its repr, cut short}

Everything else (a socket, a generator, a custom class) comes back as a `Shown`: its type name and
its repr, so a checker can say what the student returned without ever holding it.
"""

from __future__ import annotations

import builtins
import json
import math

__all__ = ["Shown", "decode", "dumps", "encode", "loads", "type_name"]

MAX_DEPTH = 12
MAX_ITEMS = 100_000
MAX_REPR = 300


class Shown:
    """A value that could not travel as data: what its type was called and how it printed.

    A plain class, not a dataclass: every exercise sandbox imports this module, and `dataclasses`
    (which imports `inspect`, `ast`, `dis`...) would add ~15 ms of CPU to each one's start-up."""

    __slots__ = ("text", "type")

    def __init__(self, type: str, text: str):
        self.type, self.text = type, text

    def __repr__(self) -> str:
        return self.text

    def __eq__(self, other) -> bool:
        return isinstance(other, Shown) and (self.type, self.text) == (other.type, other.text)

    def __hash__(self) -> int:
        return hash((self.type, self.text))


def type_name(value) -> str:
    """The type of a returned value as the student wrote it (a Shown keeps the original's name)."""
    return value.type if isinstance(value, Shown) else type(value).__name__


def _shown(value) -> dict:
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ of the student's is still a value we can name
        text = f"<{type(value).__name__} object>"
    if len(text) > MAX_REPR:
        text = text[:MAX_REPR] + "..."
    return {"object": type(value).__name__, "repr": text}


def encode(value, depth: int = 0):
    """`value` as JSON-ready data (in the student's process)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)  # an IntEnum (socket.AF_UNIX) travels as its number
    if isinstance(value, float):
        return value if math.isfinite(value) else {"float": repr(value)}
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bytes | bytearray):
        return {"bytes": bytes(value).decode("latin-1")}
    if isinstance(value, BaseException):
        return encode_exception(value)
    if depth < MAX_DEPTH and isinstance(value, list | tuple | set | frozenset | dict) and len(value) <= MAX_ITEMS:
        if isinstance(value, dict):
            return {"dict": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in value.items()]}
        items = [encode(v, depth + 1) for v in value]
        if isinstance(value, list):
            return items
        return {"tuple": items} if isinstance(value, tuple) else {"set": items}
    return _shown(value)


def encode_exception(exc: BaseException) -> dict:
    base = next(c for c in type(exc).__mro__ if getattr(builtins, c.__name__, None) is c)
    data = {"exception": type(exc).__name__, "base": base.__name__, "text": _text(exc),
            "args": [encode(a, MAX_DEPTH - 1) for a in exc.args[:4]]}
    if isinstance(exc, OSError):
        data.update(errno=exc.errno, strerror=exc.strerror, filename=encode(exc.filename, MAX_DEPTH))
    return data


def _text(exc: BaseException) -> str:
    try:
        return str(exc)[:MAX_REPR]
    except Exception:
        return ""


def _rebuild_exception(data: dict) -> BaseException:
    """An instance of the builtin class (or a subclass named like the student's, over its builtin base)."""
    base = getattr(builtins, str(data.get("base")), None)
    if not (isinstance(base, type) and issubclass(base, BaseException)):
        base = Exception
    name = str(data.get("exception", base.__name__))
    cls = base if name == base.__name__ else type(name if name.isidentifier() else base.__name__, (base,), {
        "__str__": lambda self: self.text})
    args = [decode(a) for a in data.get("args", [])]
    if issubclass(base, OSError) and isinstance(data.get("errno"), int):
        exc = cls(data["errno"], str(data.get("strerror") or ""), *([decode(data["filename"])] if data.get("filename")
                                                                   else []))
    else:
        try:
            exc = cls(*args)
        except Exception:  # e.g. UnicodeDecodeError wants five arguments: keep the text
            exc = cls(data.get("text", ""))
    exc.text = str(data.get("text", ""))
    return exc


def decode(data):
    """The value `encode` described, rebuilt from the closed list of types (in the kernel)."""
    if data is None or isinstance(data, bool | int | float | str):
        return data
    if isinstance(data, list):
        return [decode(v) for v in data]
    if not isinstance(data, dict) or len(data) == 0:
        return Shown("unknown", repr(data)[:MAX_REPR])
    if "bytes" in data:
        return str(data["bytes"]).encode("latin-1", errors="replace")
    if "tuple" in data:
        return tuple(decode(v) for v in data["tuple"])
    if "set" in data:
        try:
            return {decode(v) for v in data["set"]}
        except TypeError:
            return Shown("set", repr(data["set"])[:MAX_REPR])
    if "dict" in data:
        try:
            return {decode(k): decode(v) for k, v in data["dict"]}
        except (TypeError, ValueError):
            return Shown("dict", repr(data["dict"])[:MAX_REPR])
    if "float" in data:
        return float(str(data["float"])) if str(data["float"]) in {"nan", "inf", "-inf"} else math.nan
    if "exception" in data:
        return _rebuild_exception(data)
    return Shown(str(data.get("object", "object")), str(data.get("repr", ""))[:MAX_REPR + 3])


def dumps(value) -> str:
    return json.dumps(encode(value))


def loads(text: str):
    return decode(json.loads(text))
