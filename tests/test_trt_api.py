"""The project's TensorRT calls exist in the real Python bindings of every supported TensorRT (issue 13).

The `tensorrt-cu12-bindings` wheels hold the compiled module without the multi-GB libraries. It
cannot be imported here (it needs libnvinfer), but pybind11 keeps every class, method, property and
enum-member name as a NUL-terminated string in the .so, and `__init__.py` adds a few Python helpers
(`nptype`, ...). The test collects, with `ast`, every attribute the TensorRT code reads from the
`trt` module and from TensorRT objects, and requires each name in both versions unless the access
is guarded (inside or after an `if` on hasattr/getattr or the TensorRT version).
"""

from __future__ import annotations

import ast
import itertools
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The oldest and newest TensorRT the code supports: JetPack 6.1's 10.3 and JetPack 7's 11.4.
VERSIONS = ("10.3.0", "11.4.0.106")
SOURCES = ("karmma_edge/edge_runtime/backends/tensorrt.py", "karmma_edge/edge_runtime/engine_cache.py",
           "karmma_edge/quantize/tensorrt_build.py")
# Names that hold TensorRT objects in SOURCES (self._engine counts as engine).
RECEIVERS = {"trt", "builder", "network", "parser", "config", "profile", "tensor", "err", "cache", "engine",
             "context", "runtime", "layer", "inspector", "timing"}


def bindings_dir() -> Path:
    if os.environ.get("KARMMA_TRT_BINDINGS"):
        return Path(os.environ["KARMMA_TRT_BINDINGS"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "karmma-edge" / "trt-bindings"


def fetch_wheel(version: str) -> Path:
    """The cached wheel, downloaded once from the package index (pip download, no dependencies)."""
    folder = bindings_dir()
    found = sorted(folder.glob(f"tensorrt_cu12_bindings-{version}-*.whl"))
    if not found:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            pytest.skip(f"cannot cache the TensorRT bindings wheels in {folder}: {e}")
        r = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:",
                            "-d", str(folder), f"tensorrt-cu12-bindings=={version}"],
                           capture_output=True, text=True, timeout=300)
        found = sorted(folder.glob(f"tensorrt_cu12_bindings-{version}-*.whl"))
        if not found:
            pytest.skip(f"cannot fetch tensorrt-cu12-bindings=={version} into {folder}: "
                        f"{(r.stderr or r.stdout).strip().splitlines()[-1:] or 'no wheel for this platform'}")
    return found[-1]


class BindingNames:
    """`name in names`: whether the compiled module or its __init__.py defines `name`.

    A name is looked up as a NUL-terminated string in the .so, not as a whole string: the linker
    merges string literals by suffix, so "Logger" is stored only as the tail of "ILogger".
    """

    def __init__(self, wheel: Path):
        self.python: set[str] = set()
        self.binary = b""
        with zipfile.ZipFile(wheel) as zf:
            for info in zf.infolist():
                if re.fullmatch(r"tensorrt_bindings/tensorrt[^/]*\.so", info.filename):
                    self.binary += zf.read(info)
                elif info.filename == "tensorrt_bindings/__init__.py":
                    for node in ast.walk(ast.parse(zf.read(info))):
                        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                            self.python.add(node.name)
                        elif isinstance(node, ast.Assign):
                            self.python |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        assert self.binary, f"{wheel} holds no tensorrt_bindings/tensorrt*.so"

    def __contains__(self, name: str) -> bool:
        return name in self.python or name.encode() + b"\0" in self.binary


# --- the project's TensorRT calls -----------------------------------------------------------------


def _receiver(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
        return node.attr.lstrip("_")
    return None


def _is_guard(test: ast.AST) -> bool:
    """hasattr/getattr, or a comparison with the TensorRT version."""
    for node in ast.walk(test):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("hasattr", "getattr"):
            return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and (
                "version" in node.func.id or "major" in node.func.id):
            return True
        if isinstance(node, ast.Name) and node.id in ("major", "version") or \
                isinstance(node, ast.Attribute) and node.attr == "__version__":
            return True
    return False


def _ends_flow(body: list[ast.stmt]) -> bool:
    return bool(body) and isinstance(body[-1], (ast.Return, ast.Raise))


class _Collector(ast.NodeVisitor):
    def __init__(self, path: str):
        self.path = path
        self.uses: list[tuple[str, int, str, tuple[str, ...], bool]] = []   # file, line, text, names, guarded
        self.guarded = 0

    def _visit_block(self, body: list[ast.stmt]) -> None:
        fallbacks = 0
        for stmt in body:
            self.visit(stmt)
            if isinstance(stmt, ast.If) and _is_guard(stmt.test) and _ends_flow(stmt.body):
                fallbacks += 1      # the rest of the block is the fallback of that guard
                self.guarded += 1
        self.guarded -= fallbacks

    def generic_visit(self, node: ast.AST) -> None:
        for field, value in ast.iter_fields(node):
            if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
                self._visit_block(value)
            elif isinstance(value, list):
                for item in value:
                    if isinstance(item, ast.AST):
                        self.visit(item)
            elif isinstance(value, ast.AST):
                self.visit(value)

    def visit_If(self, node: ast.If) -> None:
        guard = _is_guard(node.test)
        self.guarded += guard
        self.generic_visit(node)
        self.guarded -= guard

    visit_IfExp = visit_If

    def visit_Attribute(self, node: ast.Attribute) -> None:
        chain, base = [], node
        while isinstance(base, ast.Attribute) and _receiver(base) is None:
            chain.append(base.attr)
            base = base.value
        receiver = _receiver(base)
        if receiver in RECEIVERS:
            # trt.__version__.split: the dunder is Python's, and what follows it is a str method
            names = tuple(itertools.takewhile(lambda n: not n.startswith("__"), reversed(chain)))
            if names:
                self.uses.append((self.path, node.lineno, ast.unparse(node), names, self.guarded > 0))
            return
        self.generic_visit(node)


def tensorrt_uses() -> list[tuple[str, int, str, tuple[str, ...], bool]]:
    uses = []
    for rel in SOURCES:
        collector = _Collector(rel)
        collector.visit(ast.parse((ROOT / rel).read_text()))
        uses += collector.uses
    return uses


# --- tests ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=VERSIONS)
def names(request) -> tuple[str, BindingNames]:
    return request.param, BindingNames(fetch_wheel(request.param))


def test_the_bindings_name_what_each_version_has(names):
    version, found = names
    assert all(n in found for n in ("Builder", "IBuilderConfig", "set_timing_cache", "execute_async_v3", "nptype"))
    assert "no_such_tensorrt_name" not in found
    # 11 removed the calibrator API and the FP16 builder flag; 10.3 still has them.
    eleven = version.startswith("11.")
    assert ("IInt8EntropyCalibrator2" in found) != eleven and ("FP16" in found) != eleven


def test_the_collector_sees_the_calls_and_their_guards():
    uses = {(text, guarded) for _, _, text, _, guarded in tensorrt_uses()}
    texts = {t for t, _ in uses}
    assert {"self._context.execute_async_v3", "config.set_timing_cache", "trt.BuilderFlag.GPU_FALLBACK"} <= texts
    assert ("err.node_name", True) in uses                        # `... if hasattr(err, "node_name") else ""`
    assert ("trt.BuilderFlag.FP16", True) in uses                 # after `if ... not hasattr(...): raise`


def test_every_tensorrt_call_exists_in_each_supported_version_or_is_guarded(names):
    version, found = names
    missing = [f"{path}:{line} {text} ({', '.join(n for n in parts if n not in found)})"
               for path, line, text, parts, guarded in tensorrt_uses()
               if not guarded and any(n not in found for n in parts)]
    assert not missing, f"TensorRT {version}'s bindings lack, unguarded: " + "; ".join(missing)


def test_a_guard_covers_its_branches_and_the_fallback_after_it():
    collector = _Collector("snippet.py")
    collector.visit(ast.parse(
        "def size(trt, engine):\n"
        "    trt.Builder\n"
        "    if hasattr(engine, 'new_size'):\n"
        "        return engine.new_size\n"
        "    return engine.old_size\n"
        "def flags(trt, major):\n"
        "    flag = trt.BuilderFlag.FP16 if major < 11 else 0\n"
        "    return trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED\n"
    ))
    guarded = {text: g for _, _, text, _, g in collector.uses}
    assert guarded == {"trt.Builder": False, "engine.new_size": True, "engine.old_size": True,
                       "trt.BuilderFlag.FP16": True, "trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED": False}
