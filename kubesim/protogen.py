"""Build kubesim's protobuf schema from the upstream ``generated.proto`` files (``python -m
kubesim.protogen``).

The Kubernetes API types live in the Go modules ``k8s.io/api`` and ``k8s.io/apimachinery``. ``go mod
download`` puts them in the Go module cache; protoc (from grpcio-tools) compiles every ``generated.proto``
into one descriptor set, which :mod:`kubesim.protobuf` loads. Nothing generated is committed: ``make
install`` runs this once, and kubesim runs it on start when the file is missing.

The descriptor set alone does not say how a Go struct maps to JSON: which fields are embedded
(``json:",inline"``, flattened into the parent in JSON), which zero values JSON omits, and which JSON names
differ from the proto names. All three come from the struct tags of the modules' Go types, written next to
the descriptor set as ``<name>.shape.json``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

K8S_API_VERSION = "v0.37.2"  # the Kubernetes 1.37 API, as the kubectl this project ships
MODULES = ("k8s.io/api", "k8s.io/apimachinery")
GEN_DIR = Path(os.environ.get("KUBESIM_PROTO_DIR") or Path(__file__).resolve().parent / "_generated")
SHAPE_FORMAT = 2  # bumped when the shape file gains a key: an older file is rebuilt
NAME = f"k8s-api-{K8S_API_VERSION}-{SHAPE_FORMAT}"

# A struct field with its tags: ``Name *Type `json:"..." protobuf:"..."` `` (no name when embedded).
_FIELD_RE = re.compile(r"^\s+(?:(\w+)\s+)?(\*?)([\w.\[\]*]+)\s+`([^`]*)`")
_TAG_RE = re.compile(r'(\w+):"([^"]*)"')
_STRUCT_RE = re.compile(r"^type (\w+) struct \{")
_PACKAGE_RE = re.compile(r"^package ([\w.]+);", re.M)


class ProtoGenError(Exception):
    """The schema could not be built (no Go, no network, no protoc); the message says which."""


def descriptor_path() -> Path:
    return GEN_DIR / f"{NAME}.desc"


def shape_path() -> Path:
    return GEN_DIR / f"{NAME}.shape.json"


def module_dirs() -> dict[str, Path]:
    """``go mod download`` the modules (a no-op when cached); their directories in the module cache."""
    go = shutil.which("go")
    if go is None:
        raise ProtoGenError("Go is not installed (kubesim's protobuf schema comes from the Go module cache)")
    wanted = [f"{m}@{K8S_API_VERSION}" for m in MODULES]
    with tempfile.TemporaryDirectory() as tmp:  # outside any go.mod: download by module@version
        proc = subprocess.run(
            [go, "mod", "download", "-json", *wanted],
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "GOFLAGS": "-mod=mod"},
        )
    dirs: dict[str, Path] = {}
    decoder, text = json.JSONDecoder(), proc.stdout.strip()
    while text:
        info, end = decoder.raw_decode(text)
        text = text[end:].strip()
        if info.get("Error"):
            raise ProtoGenError(f"go mod download {info.get('Path')}: {info['Error']}")
        dirs[info["Path"]] = Path(info["Dir"])
    if set(dirs) != set(MODULES):
        raise ProtoGenError(f"go mod download failed: {proc.stderr.strip()[:300]}")
    return dirs


def _protos(dirs: dict[str, Path]) -> list[tuple[str, Path]]:
    """(import path, file) of every generated.proto; the files import each other by that path."""
    out = []
    for module, root in dirs.items():
        for path in sorted(root.rglob("generated.proto")):
            rel = path.relative_to(root).as_posix()
            if "/testapigroup/" not in rel:
                out.append((f"{module}/{rel}", path))
    return out


def _compile(protos: list[tuple[str, Path]], out: Path) -> None:
    try:
        from grpc_tools import protoc  # type: ignore[import-untyped]
    except ImportError:
        raise ProtoGenError("grpcio-tools is not installed (make install brings it)") from None
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp)
        for import_path, path in protos:  # the import layout, as symlinks into the module cache
            link = stage / import_path
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(path)
        include = Path(protoc.__file__).parent / "_proto"
        args = [
            "protoc",
            f"-I{stage}",
            f"-I{include}",
            "--include_imports",
            f"--descriptor_set_out={out}",
            *[p for p, _ in protos],
        ]
        # protoc warns about unused imports in upstream files on stderr; only a failure matters.
        read, write = os.pipe()
        saved = os.dup(2)
        os.dup2(write, 2)
        try:
            code = protoc.main(args)
        finally:
            os.dup2(saved, 2)
            os.close(write)
            os.close(saved)
            errors = os.read(read, 65536).decode(errors="replace")
            os.close(read)
        if code != 0:
            raise ProtoGenError("protoc failed: " + errors.strip()[-500:])


def _shape(protos: list[tuple[str, Path]]) -> dict[str, dict[str, Any]]:
    """Per message (full proto name), from the Go struct tags: ``inline`` (embedded struct fields),
    ``keepZero`` (fields whose zero value JSON keeps: pointers and fields without ``omitempty``),
    ``omitZero`` (``omitzero`` fields: JSON leaves out even a zero struct) and ``jsonNames`` (proto field
    name -> JSON name, where they differ, e.g. ``Webhooks`` -> ``webhooks``)."""
    shape: dict[str, dict[str, Any]] = {}
    for _, proto in protos:
        match = _PACKAGE_RE.search(proto.read_text())
        if match is None:
            continue
        package = match.group(1)
        for go_file in sorted(proto.parent.glob("*.go")):
            if go_file.name.endswith("_test.go") or go_file.name.startswith("zz_"):
                continue
            struct = ""
            for line in go_file.read_text().splitlines():
                start = _STRUCT_RE.match(line)
                if start:
                    struct = start.group(1)
                    continue
                if line.startswith("}"):
                    struct = ""
                    continue
                field = _FIELD_RE.match(line) if struct else None
                if field is None:
                    continue
                _name, pointer, _type, tags = field.groups()
                tag = dict(_TAG_RE.findall(tags))
                json_tag, proto_tag = tag.get("json"), tag.get("protobuf")
                if json_tag is None or proto_tag is None:
                    continue
                proto_name = next((p[5:] for p in proto_tag.split(",") if p.startswith("name=")), "")
                if not proto_name:
                    continue
                entry = shape.setdefault(
                    f"{package}.{struct}", {"inline": [], "keepZero": [], "omitZero": [], "jsonNames": {}}
                )
                json_name, *options = json_tag.split(",")
                if json_name == "":  # embedded and flattened (json:",inline" or json:"")
                    entry["inline"].append(proto_name)
                    continue
                if json_name != proto_name:
                    entry["jsonNames"][proto_name] = json_name
                if "omitzero" in options:  # Go 1.24's omitzero: a zero struct (a zero Time) is left out too
                    entry["omitZero"].append(proto_name)
                elif pointer or "omitempty" not in options:
                    entry["keepZero"].append(proto_name)
    return shape


def build() -> Path:
    """Build the descriptor set and shape file (atomically); returns the descriptor set's path."""
    dirs = module_dirs()
    protos = _protos(dirs)
    GEN_DIR.mkdir(parents=True, exist_ok=True)
    # Unique temporary names, then renames: kubesims starting at once may all build, none sees half a file.
    tmp_desc = descriptor_path().with_suffix(f".desc.{os.getpid()}.tmp")
    tmp_shape = shape_path().with_suffix(f".{os.getpid()}.tmp")
    try:
        _compile(protos, tmp_desc)
        tmp_shape.write_text(json.dumps(_shape(protos), sort_keys=True))
        tmp_shape.replace(shape_path())
        tmp_desc.replace(descriptor_path())
    finally:
        tmp_desc.unlink(missing_ok=True)
        tmp_shape.unlink(missing_ok=True)
    return descriptor_path()


def ensure() -> Path:
    """The descriptor set, built first if missing; raises ProtoGenError when it cannot be built."""
    if descriptor_path().exists() and shape_path().exists():
        return descriptor_path()
    return build()


def main() -> int:
    try:
        path = ensure()
    except ProtoGenError as exc:
        print(f"kubesim protobuf schema: {exc}", file=sys.stderr)
        return 1
    print(f"kubesim protobuf schema: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
