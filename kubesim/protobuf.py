"""Kubernetes' protobuf wire format (``application/vnd.kubernetes.protobuf``), as the apiserver speaks it.

kubectl's typed commands (``kubectl create deployment|service|namespace|configmap|secret ...``) send their
bodies in protobuf and prefer protobuf answers. An object on the wire is the magic ``k8s\\x00`` followed by
a ``runtime.Unknown`` envelope: the object's apiVersion/kind and its message bytes. The messages come from
the upstream ``generated.proto`` files (:mod:`kubesim.protogen` builds the descriptor set); the protobuf
library does the wire format and ``json_format`` the field mapping. What is left here is what Kubernetes'
JSON does differently from protobuf's JSON: the types with their own JSON form (Time, IntOrString, Quantity,
RawExtension, FieldsV1), embedded structs flattened into their parent, int64 as numbers, and the zero values
Go's JSON omits.
"""

from __future__ import annotations

import base64
import functools
import json
import struct
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from kubesim import protogen
from kubesim.discovery import parse_accept

if TYPE_CHECKING:
    from google.protobuf.descriptor import Descriptor, FieldDescriptor

# The protobuf library is imported on first use (``Codec``), not with the server: kubesim starts faster.

PROTOBUF_CT = "application/vnd.kubernetes.protobuf"
WATCH_CT = PROTOBUF_CT + ";stream=watch"
MAGIC = b"k8s\x00"

_META = "k8s.io.apimachinery.pkg.apis.meta.v1"
_TIME = {f"{_META}.Time", f"{_META}.MicroTime"}
_INT_OR_STRING = "k8s.io.apimachinery.pkg.util.intstr.IntOrString"
_QUANTITY = "k8s.io.apimachinery.pkg.api.resource.Quantity"
_RAW = "k8s.io.apimachinery.pkg.runtime.RawExtension"
_FIELDS_V1 = f"{_META}.FieldsV1"
_DURATION = f"{_META}.Duration"
_VERBS = f"{_META}.Verbs"
# FieldDescriptor.TYPE_INT64, _UINT64, _FIXED64, _SFIXED64, _SINT64 (descriptor.proto's numbers):
# protobuf's JSON writes these as strings, Kubernetes' JSON as numbers.
_INT64 = {3, 4, 6, 16, 18}


class ProtobufError(ValueError):
    """A body that is not a Kubernetes protobuf object (the server answers 400)."""


def wants_protobuf(accept: str) -> bool:
    """True if the client's first acceptable media type is plain protobuf (kubectl's typed clients)."""
    for media, params in parse_accept(accept):
        if media == PROTOBUF_CT:
            return "as" not in params
        if media in ("application/json", "application/yaml", "*/*", "application/*"):
            return False
    return False


def is_protobuf(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower() == PROTOBUF_CT


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _is_repeated(field: FieldDescriptor) -> bool:
    repeated = getattr(field, "is_repeated", None)
    if repeated is not None:
        return bool(repeated)
    return getattr(field, "label", 0) == 3  # LABEL_REPEATED, before protobuf had is_repeated


def _rfc3339(seconds: int, nanos: int, micro: bool) -> str | None:
    """Time is whole seconds (``...05Z``); MicroTime keeps microseconds (``...05.123456Z``)."""
    if seconds == 0 and nanos == 0:
        return None  # Go's zero time (an empty message on the wire) is JSON null
    moment = datetime.fromtimestamp(seconds, UTC).replace(microsecond=nanos // 1000 if micro else 0)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%SZ")


def _timestamp(value: str) -> dict[str, int]:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return {"seconds": int(moment.timestamp() // 1), "nanos": moment.microsecond * 1000}


class Codec:
    """Encode and decode Kubernetes objects with the upstream message types."""

    def __init__(self, descriptor_set: bytes, shape: dict[str, dict[str, Any]]) -> None:
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

        self.pool = descriptor_pool.DescriptorPool()
        for file in descriptor_pb2.FileDescriptorSet.FromString(descriptor_set).file:
            self.pool.Add(file)
        self.shape = shape
        self._unknown = message_factory.GetMessageClass(
            self.pool.FindMessageTypeByName("k8s.io.apimachinery.pkg.runtime.Unknown")
        )

    # -- message lookup --------------------------------------------------------------------------------------

    @functools.cache  # noqa: B019 - one Codec per process
    def message(self, api_version: str, kind: str) -> Descriptor | None:
        """The message of ``kind`` in ``api_version``; None for kinds with no protobuf (custom resources)."""
        group, _, version = api_version.rpartition("/")
        package = group.split(".")[0] if group else "core"
        if group and "." in group and not group.endswith(".k8s.io"):
            return None
        # Status, DeleteOptions, WatchEvent ... are meta/v1 types registered in every group version.
        for name in (f"k8s.io.api.{package}.{version}.{kind}", f"{_META}.{kind}"):
            try:
                found: Descriptor = self.pool.FindMessageTypeByName(name)
            except KeyError:
                continue
            return found
        return None

    def supports(self, obj: Any) -> bool:
        return (
            isinstance(obj, dict)
            and self.message(str(obj.get("apiVersion", "")), str(obj.get("kind", ""))) is not None
        )

    # -- the envelope ----------------------------------------------------------------------------------------

    def encode(self, obj: dict[str, Any]) -> bytes:
        """``k8s\\x00`` + runtime.Unknown{typeMeta, raw: the object's message}."""
        api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
        desc = self.message(api_version, kind)
        if desc is None:
            raise ProtobufError(f"no protobuf message for {api_version} {kind}")
        from google.protobuf import json_format, message_factory

        msg = message_factory.GetMessageClass(desc)()
        json_format.ParseDict(self._to_proto(obj, desc), msg, ignore_unknown_fields=True)
        envelope: Any = self._unknown()
        envelope.typeMeta.apiVersion = api_version
        envelope.typeMeta.kind = kind
        envelope.raw = msg.SerializeToString()
        return MAGIC + envelope.SerializeToString()

    def decode(self, data: bytes) -> dict[str, Any]:
        """The JSON form of one enveloped object (apiVersion and kind from the envelope)."""
        if not data.startswith(MAGIC):
            raise ProtobufError("the body is not a Kubernetes protobuf object (no k8s\\x00 prefix)")
        from google.protobuf import json_format, message_factory

        try:
            envelope: Any = self._unknown.FromString(data[len(MAGIC) :])
            api_version, kind = envelope.typeMeta.apiVersion, envelope.typeMeta.kind
            desc = self.message(api_version, kind)
            if desc is None:
                raise ProtobufError(f"no protobuf message for {api_version or '?'} {kind or '?'}")
            msg = message_factory.GetMessageClass(desc).FromString(envelope.raw)
        except ProtobufError:
            raise
        except Exception as exc:  # the library's DecodeError and friends
            raise ProtobufError(f"protobuf decoding failed: {exc}") from None
        body = self._from_proto(json_format.MessageToDict(msg, preserving_proto_field_name=True), desc)
        return {"apiVersion": api_version, "kind": kind, **(body or {})}

    def _watch_event_class(self) -> Any:
        from google.protobuf import message_factory

        return message_factory.GetMessageClass(self.pool.FindMessageTypeByName(f"{_META}.WatchEvent"))

    def watch_frame(self, type_: str, obj: dict[str, Any]) -> bytes:
        """One frame of a protobuf watch: a 4-byte big-endian length, then a bare WatchEvent message (the
        stream carries no envelope, as the apiserver's raw serializer writes it) whose object is enveloped."""
        msg = self._watch_event_class()()
        msg.type = type_
        msg.object.raw = self.encode(obj)
        frame: bytes = msg.SerializeToString()
        return struct.pack(">I", len(frame)) + frame

    def watch_event(self, frame: bytes) -> dict[str, Any]:
        """``{"type", "object"}`` of one frame's message (after the length prefix)."""
        try:
            msg = self._watch_event_class().FromString(frame)
        except Exception as exc:  # the library's DecodeError
            raise ProtobufError(f"protobuf decoding failed: {exc}") from None
        return {"type": msg.type, "object": self.decode(msg.object.raw)}

    # -- Kubernetes JSON -> protobuf JSON --------------------------------------------------------------------

    def _to_proto(self, value: Any, desc: Any) -> Any:
        name = desc.full_name
        if name in _TIME:
            return _timestamp(value) if isinstance(value, str) and value else {}
        if name == _INT_OR_STRING:
            if isinstance(value, str):
                return {"type": 1, "strVal": value}
            return {"type": 0, "intVal": int(value)}
        if name == _QUANTITY:
            return {"string": str(value)}
        if name in (_RAW, _FIELDS_V1):
            key = "raw" if name == _RAW else "Raw"
            return {key: base64.b64encode(json.dumps(value, separators=(",", ":")).encode()).decode()}
        if name == _VERBS:
            return {"items": list(value or [])}
        if name == _DURATION or not isinstance(value, dict):
            return {}
        out: dict[str, Any] = {}
        rest = dict(value)
        proto_names = self._proto_names(desc)
        for inline in self.shape.get(name, {}).get("inline", []):
            field = desc.fields_by_name[inline]
            keys = self._json_keys(field.message_type)
            # An embedded struct's keys, unless the outer struct has the same key (Go: the outer wins).
            sub = {
                k: rest.pop(k)
                for k in list(rest)
                if k in keys and proto_names.get(k, k) not in desc.fields_by_name
            }
            out[inline] = self._to_proto(sub, field.message_type)
        for key, item in rest.items():
            field = desc.fields_by_name.get(proto_names.get(key, key))
            if field is None or (item is None and field.message_type is None):
                continue  # not in the schema (ignored, like an unknown JSON field), or a null scalar
            # A null struct (a zero Time) goes on the wire empty, as Go writes it; it decodes to null again.
            out[field.name] = {} if item is None else self._field_to_proto(field, item)
        return out

    @functools.cache  # noqa: B019 - one Codec per process
    def _json_keys(self, desc: Any) -> frozenset[str]:
        """The JSON keys of a message: its fields, with embedded (inline) ones replaced by theirs."""
        shape = self.shape.get(desc.full_name, {})
        inline, json_names = shape.get("inline", []), shape.get("jsonNames", {})
        keys = {json_names.get(f.name, f.name) for f in desc.fields if f.name not in inline}
        for name in inline:
            keys |= self._json_keys(desc.fields_by_name[name].message_type)
        return frozenset(keys)

    @functools.cache  # noqa: B019 - one Codec per process
    def _proto_names(self, desc: Any) -> dict[str, str]:
        """JSON name -> proto field name, where they differ."""
        json_names = self.shape.get(desc.full_name, {}).get("jsonNames", {})
        return {json_name: proto for proto, json_name in json_names.items()}

    def _field_to_proto(self, field: Any, item: Any) -> Any:
        if _is_map(field):
            value_field = field.message_type.fields_by_name["value"]
            if value_field.message_type is None or not isinstance(item, dict):
                return item
            return {k: self._to_proto(v, value_field.message_type) for k, v in item.items()}
        if field.message_type is None:
            return item
        if _is_repeated(field):
            return [self._to_proto(v, field.message_type) for v in item or []]
        return self._to_proto(item, field.message_type)

    # -- protobuf JSON -> Kubernetes JSON --------------------------------------------------------------------

    def _from_proto(self, value: Any, desc: Any) -> Any:
        name = desc.full_name
        if name in _TIME:
            return _rfc3339(
                int(value.get("seconds", 0)), int(value.get("nanos", 0)), micro=name.endswith("MicroTime")
            )
        if name == _INT_OR_STRING:
            return value.get("strVal", "") if int(value.get("type", 0)) == 1 else int(value.get("intVal", 0))
        if name == _QUANTITY:
            return value.get("string", "")
        if name in (_RAW, _FIELDS_V1):
            raw = base64.b64decode(value.get("raw" if name == _RAW else "Raw", ""))
            if not raw:
                return None
            return self.decode(raw) if raw.startswith(MAGIC) else json.loads(raw)
        if name == _VERBS:
            return list(value.get("items", []))
        if name == _DURATION:
            return None
        shape = self.shape.get(name, {})
        inline, keep_zero = shape.get("inline", []), shape.get("keepZero", [])
        json_names, omit_zero = shape.get("jsonNames", {}), shape.get("omitZero", [])
        out: dict[str, Any] = {}
        for key, item in value.items():
            field = desc.fields_by_name[key]
            converted = self._field_from_proto(field, item)
            if key in inline and isinstance(converted, dict):
                out.update(converted)
            elif (
                field.message_type is None
                and not _is_repeated(field)
                and key not in keep_zero
                and converted in ("", 0, False)
            ):
                continue  # Go's JSON omits this zero value (omitempty, not a pointer)
            elif key in omit_zero and (converted is None or converted in ("", 0, False, {}, [])):
                continue  # omitzero: even a zero struct (a zero Time) is left out
            else:  # on the wire: a set value, or a struct Go always writes (a zero Time is JSON null)
                out[json_names.get(key, key)] = converted
        return out

    def _field_from_proto(self, field: Any, item: Any) -> Any:
        if _is_map(field):
            value_field = field.message_type.fields_by_name["value"]
            if value_field.message_type is None:
                return item
            return {k: self._from_proto(v, value_field.message_type) for k, v in item.items()}
        if field.message_type is not None:
            if _is_repeated(field):
                return [self._from_proto(v, field.message_type) for v in item]
            return self._from_proto(item, field.message_type)
        if field.type in _INT64:
            return [int(v) for v in item] if _is_repeated(field) else int(item)
        return item


class Unavailable(Exception):
    """kubesim speaks no protobuf here (the schema could not be built); the message says why."""


@functools.cache
def codec() -> Codec:
    """The process's codec, loaded on first use; raises Unavailable if the schema cannot be had."""
    try:
        path = protogen.ensure()
    except protogen.ProtoGenError as exc:
        raise Unavailable(str(exc)) from None
    return Codec(path.read_bytes(), json.loads(protogen.shape_path().read_text()))


def available() -> Codec | None:
    try:
        return codec()
    except Unavailable:
        return None
