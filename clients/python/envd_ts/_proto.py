"""The envd-ts message types, built from descriptors.binpb into a private descriptor pool.

A private pool, not protobuf's default one: the e2b SDK registers its own copy of process.proto
there, and two definitions of process.ProcessConfig in one pool is an error.
Regenerate descriptors.binpb with scripts/generate.sh after a .proto change.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_FILES = descriptor_pb2.FileDescriptorSet.FromString((Path(__file__).parent / "descriptors.binpb").read_bytes())
POOL = descriptor_pool.DescriptorPool()
for _f in _FILES.file:
    POOL.Add(_f)

_classes: Dict[str, Any] = {}


def message(full_name: str) -> Any:
    """The message class of a full name, e.g. "envdts.v1.StartProcessRequest"."""
    cls = _classes.get(full_name)
    if cls is None:
        desc = POOL.FindMessageTypeByName(full_name)
        get = getattr(message_factory, "GetMessageClass", None)
        cls = get(desc) if get else message_factory.MessageFactory(POOL).GetPrototype(desc)
        _classes[full_name] = cls
    return cls


def enum_name(full_name: str, number: int, prefix: str) -> str:
    """An enum value's name without its prefix, lower case: ("envdts.v1.ExitOutcome", 5, "EXIT_OUTCOME_") -> "oom_killed"."""
    value = POOL.FindEnumTypeByName(full_name).values_by_number.get(number)
    name = value.name if value else f"{prefix}UNSPECIFIED"
    return name[len(prefix):].lower() if name.startswith(prefix) else name.lower()


def enum_value(full_name: str, name: str) -> int:
    """An enum value by its full name, e.g. ("envdts.v1.ProxyType", "PROXY_TYPE_HTTP") -> 3."""
    return POOL.FindEnumTypeByName(full_name).values_by_name[name].number
