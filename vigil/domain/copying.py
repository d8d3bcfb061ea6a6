"""Snapshots of the dataclasses Vigil persists, made fast.

Every change records a snapshot of the changed resource or record, so a
later change cannot reach a row already queued for the store. A rack
failure snapshots thousands of instances and ports on the notification
path, where ``copy.copy`` (the generic ``__reduce_ex__`` machinery) and
``copy.deepcopy`` cost several microseconds each. Here each class gets a
copier built once: its fields read with one ``attrgetter`` and passed to its
constructor, and only its container fields (lists, dicts, nested
dataclasses) copied again, one level deep; their elements are values that
are replaced, never changed in place.
"""

import types
import typing
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from operator import attrgetter
from typing import Any, TypeVar

T = TypeVar("T")

_COPIERS: dict[type, Callable[[Any], Any]] = {}


def _is_container(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (list, dict):
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_is_container(arg) for arg in typing.get_args(annotation))
    return isinstance(annotation, type) and is_dataclass(annotation)


def _copy_value(value: Any) -> Any:
    kind = type(value)
    if kind is list:
        return list(value)
    if kind is dict:
        return dict(value)
    if is_dataclass(value) and not isinstance(value, type):
        return snapshot(value)
    return value


def _build(cls: type) -> Callable[[Any], Any]:
    names = [f.name for f in fields(cls)]
    hints = typing.get_type_hints(cls)
    containers = [name for name in names if _is_container(hints.get(name))]
    read = attrgetter(*names)
    single = len(names) == 1

    def copy_one(obj: Any) -> Any:
        values = read(obj)
        new = cls(values) if single else cls(*values)
        for name in containers:
            setattr(new, name, _copy_value(getattr(new, name)))
        return new

    return copy_one


def snapshot(obj: T) -> T:
    """A copy of a dataclass that later changes to ``obj`` (or its lists and dicts) do not reach."""
    cls = type(obj)
    copier = _COPIERS.get(cls)
    if copier is None:
        copier = _COPIERS[cls] = _build(cls)
    result: T = copier(obj)
    return result
