"""Build TensorRT engines from a bundle's ONNX files (DESIGN sections 4, 6, 7; issue 5).

The bundle (ONNX FP32 + Q/DQ INT8) is portable and is built anywhere; a plan is tied to the
TensorRT version and GPU, so engines are built here only where TensorRT runs (on the Jetson, or a
host with the same GPU and TensorRT). Written against TensorRT 10.3 (JetPack 6) and 11.x (JetPack 7):

- INT8 comes only from the Q/DQ graph: the calibrator API is gone in 11, and a strongly typed
  network takes every tensor's precision from the graph.
- FP16 uses the FP16 builder flag on a weakly typed network, which exists only up to 10.x; 11 has
  no precision flags at all (a mixed-precision ONNX would be needed).
"""

from __future__ import annotations

import logging
import shlex
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Mapping, Sequence

from karmma_edge.atomic import atomic_write
from karmma_edge.bundle import Bundle, Manifest
from karmma_edge.targets import PRECISIONS
from karmma_edge.edge_runtime.engine_cache import (
    DEFAULT_MAX_BATCH,
    DEFAULT_WORKSPACE_MB,
    EngineKey,
    current_device_key,
    engine_cache_dir,
    engine_path_for,
    import_tensorrt,
    is_cached,
    store_plan,
    timing_cache_path,
    version_tuple,
)
from karmma_edge.errors import BackendUnavailable, BundleError, KarmmaError
from karmma_edge.quantize.trt_rules import check_bundle_for_build

__all__ = [
    "EngineKey", "bundle_trtexec_commands", "build_bundle_engines", "build_engine", "engine_cache_dir",
    "engine_path_for", "input_shapes_from_manifest", "input_shapes_from_onnx", "require_tensorrt",
    "trtexec_command",
]
log = logging.getLogger(__name__)
DLA_MAX_BATCH = 4096      # TensorRT docs, "DLA Supported Layers and Restrictions"

Shapes = Mapping[str, Sequence[int | str]]   # input name -> full shape, first axis the batch ("B")


def require_tensorrt() -> ModuleType:
    try:
        return import_tensorrt()
    except BackendUnavailable as e:
        raise BackendUnavailable(
            f"{e} The bundle itself (ONNX FP32 and Q/DQ INT8) builds on any machine with "
            "`--backend onnxruntime`; copy it to the device and build the TensorRT engines there."
        ) from None


def onnx_kind(precision: str) -> str:
    """Which bundle artifact a precision is built from: INT8 from the Q/DQ file, FP16/FP32 from FP32."""
    if precision not in PRECISIONS:
        raise KarmmaError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    return "int8" if precision == "int8" else "fp32"


def tensorrt_major(trt: ModuleType) -> int:
    return int(trt.__version__.split(".")[0])


# --- input shapes -------------------------------------------------------------------------------


def input_shapes_from_onnx(onnx_path: Path) -> dict[str, tuple[int | str, ...]]:
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    initializers = {init.name for init in model.graph.initializer}
    shapes = {}
    for inp in model.graph.input:
        if inp.name in initializers:   # opset < 9 style graphs list weights as inputs
            continue
        dims = inp.type.tensor_type.shape.dim
        shapes[inp.name] = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or "B") for d in dims)
    return shapes


def input_shapes_from_manifest(manifest: Manifest, profile: str) -> dict[str, tuple[int | str, ...]]:
    entry = manifest.profiles.get(profile)
    if entry is None:
        raise BundleError(f"the bundle has no profile {profile!r}; it has: {', '.join(manifest.profiles)}")
    return {m: tuple(manifest.inputs[m].shape) for m in entry.modalities}


def _batch_shape(name: str, shape: Sequence[int | str], batch: int) -> tuple[int, ...]:
    rest = tuple(shape[1:])
    if any(not isinstance(d, int) or d <= 0 for d in rest):
        raise KarmmaError(f"input {name!r} has shape {tuple(shape)}: only its first (batch) axis may be dynamic")
    return (batch, *rest)


# --- trtexec ------------------------------------------------------------------------------------


def trtexec_command(onnx_path: Path, engine_path: Path, precision: str, dla_core: int | None = None,
                    timing_cache: Path | None = None, shapes: Shapes | None = None, max_batch: int = 8,
                    workspace_mb: int | None = None, major: int = 10, min_batch: int = 1,
                    opt_batch: int = 1) -> str:
    """The trtexec line equivalent to `build_engine` (for `--print-trtexec`), for TensorRT `major`.

    Shapes default to the ONNX file's inputs; the batch axis spans min/opt/max batch as in
    `build_engine` (1/1/8 by default).
    """
    onnx_kind(precision)
    shapes = dict(shapes) if shapes is not None else input_shapes_from_onnx(onnx_path)
    args = ["trtexec", f"--onnx={onnx_path}", f"--saveEngine={engine_path}"]
    if precision == "fp16":
        if major >= 11:
            raise KarmmaError(
                "TensorRT 11 has no --fp16: it needs a mixed-precision ONNX; use --precision int8 or fp32"
            )
        args.append("--fp16")
    elif major < 11:   # 11 is always strongly typed; the flag is a no-op there
        args.append("--stronglyTyped")
    for flag, batch in (("--minShapes", min_batch), ("--optShapes", opt_batch), ("--maxShapes", max_batch)):
        spec = ",".join(f"{name}:{'x'.join(map(str, _batch_shape(name, s, batch)))}" for name, s in shapes.items())
        args.append(f"{flag}={spec}")
    if dla_core is not None:
        args += [f"--useDLACore={dla_core}", "--allowGPUFallback"]
    if timing_cache is not None:
        args.append(f"--timingCacheFile={timing_cache}")
    if workspace_mb is not None:
        args.append(f"--memPoolSize=workspace:{workspace_mb}M")
    return " ".join(shlex.quote(a) for a in args)


def build_batches(max_batch: int | None, dla_core: int | None) -> tuple[int, int, int]:
    """(min, opt, max) batch of the optimization profile: 1/1/max on the GPU, and static on DLA, which
    has no dynamic dimensions (min = opt = max; 1, what the daemon feeds, unless --max-batch says)."""
    if max_batch is not None and max_batch < 1:
        raise KarmmaError(f"--max-batch must be at least 1, got {max_batch}")
    if dla_core is not None:
        if (max_batch or 1) > DLA_MAX_BATCH:
            raise KarmmaError(f"--max-batch {max_batch}: DLA takes batches up to {DLA_MAX_BATCH}")
        return (max_batch or 1,) * 3
    return 1, 1, max_batch or DEFAULT_MAX_BATCH


def bundle_trtexec_commands(bundle_root: Path, profiles: Sequence[str] | None = None, precision: str = "int8",
                            out_dir: Path = Path("engines"), dla_core: int | None = None,
                            max_batch: int | None = None, major: int = 10) -> dict[str, str]:
    """profile -> trtexec line for each profile of a bundle; needs neither TensorRT nor a GPU."""
    bundle = Bundle(bundle_root)
    kind = onnx_kind(precision)
    low, opt, high = build_batches(max_batch, dla_core)
    commands = {}
    for profile in profiles or bundle.profiles:
        onnx_path = bundle.artifact(profile, kind, verify=False)
        commands[profile] = trtexec_command(
            onnx_path, Path(out_dir) / f"{profile}.{precision}.plan", precision, dla_core,
            Path(out_dir) / "timing.cache", input_shapes_from_manifest(bundle.manifest, profile), high,
            major=major, min_batch=low, opt_batch=opt,
        )
    return commands


def installed_tensorrt_major() -> int | None:
    """The major version of the TensorRT installed here, or None where there is none."""
    try:
        return tensorrt_major(import_tensorrt())
    except BackendUnavailable:
        return None


# --- the TensorRT Python API build --------------------------------------------------------------


def _network_flags(trt: ModuleType, strongly_typed: bool) -> int:
    # TensorRT 11 is always strongly typed and only keeps the flag for compatibility (deprecated).
    if strongly_typed and tensorrt_major(trt) < 11:
        return 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    return 0


def _parse(trt: ModuleType, parser: Any, onnx_path: Path) -> None:
    if parser.parse_from_file(str(onnx_path)):
        return
    problems = []
    for i in range(parser.num_errors):
        err = parser.get_error(i)
        # node_name / node_operator are 10.x+ additions to ParserError; node() is the index.
        name = err.node_name() if hasattr(err, "node_name") else ""
        op = err.node_operator() if hasattr(err, "node_operator") else ""
        where = f"node {err.node()}" + (f" {name!r}" if name else "") + (f" ({op})" if op else "")
        problems.append(f"{where}: {err.desc()}")
    raise BundleError(
        f"TensorRT {trt.__version__}'s ONNX parser rejects {onnx_path.name}: " + "; ".join(problems or ["no detail"])
        + ". `karmma-edge check --bundle BUNDLE` lists what this karmma-edge knows TensorRT refuses; if it "
        "passes, this parser needs a rule the check lacks: please report it with the message above"
    )


def _optimization_profile(builder: Any, network: Any, batches: tuple[int, int, int]) -> Any:
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        shape = tuple(tensor.shape)
        profile.set_shape(tensor.name, *(_batch_shape(tensor.name, shape, b) for b in batches))
    return profile


def dla_unavailable_reason(version: str) -> str | None:
    """Why this TensorRT cannot build for DLA on a Jetson, or None."""
    if (11, 0, 0) <= version_tuple(version) <= (11, 4, 0):
        # TensorRT 11.0-11.4.0 docs, "Working with DLA": not supported on JetPack (10.7 was the last with it).
        return (f"TensorRT {version} has no DLA on Jetson (TensorRT 11.0 to 11.4.0 dropped it; JetPack 6's "
                "TensorRT 10 has it): drop --dla-core and build for the GPU")
    return None


def _use_dla(trt: ModuleType, builder: Any, config: Any, dla_core: int) -> None:
    reason = dla_unavailable_reason(trt.__version__)
    if reason:
        raise KarmmaError(reason)
    cores = builder.num_DLA_cores
    if cores == 0:
        raise KarmmaError("this device has no DLA (Orin Nano and Thor have none; Orin AGX and NX have 2): "
                          "drop --dla-core and build for the GPU")
    if not 0 <= dla_core < cores:
        raise KarmmaError(
            f"DLA core {dla_core} does not exist here (this device has {cores} DLA core(s)); "
            "drop the DLA option or pick a core below that number"
        )
    config.default_device_type = trt.DeviceType.DLA
    config.DLA_core = dla_core
    config.set_flag(trt.BuilderFlag.GPU_FALLBACK)   # layers the DLA cannot run stay on the GPU


def _dla_placement(config: Any, network: Any) -> dict[str, list[str]]:
    """Which layers TensorRT says can run on the DLA, and which fall back to the GPU."""
    placement: dict[str, list[str]] = {"DLA": [], "GPU": []}
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        placement["DLA" if config.can_run_on_DLA(layer) else "GPU"].append(layer.name)
    return placement


def _load_timing_cache(config: Any, path: Path) -> Any:
    blob = path.read_bytes() if path.is_file() else b""
    cache = config.create_timing_cache(blob)
    # ignore_mismatch=False: a cache from another GPU or TensorRT is refused, not trusted.
    if config.set_timing_cache(cache, False):
        return cache
    log.warning("timing cache %s does not fit this TensorRT or GPU; starting a new one", path)
    cache = config.create_timing_cache(b"")
    if not config.set_timing_cache(cache, False):
        raise KarmmaError(f"TensorRT refused an empty timing cache; delete {path} and build again")
    return cache


def build_engine(onnx_path: Path, engine_path: Path, key: EngineKey,
                 timing_cache: Path | None = None) -> dict[str, Any]:
    """Compile one ONNX file into a plan at `engine_path` with the key's batch range, workspace and
    DLA core, and its key sidecar beside it. Returns the sidecar record."""
    batches = key.batches
    if not 1 <= batches[0] <= batches[1] <= batches[2]:
        raise KarmmaError(f"batches must satisfy 1 <= min <= opt <= max, got {'/'.join(map(str, batches))}")
    if key.dla_core is not None and (key.precision == "fp32" or len(set(batches)) != 1):
        raise KarmmaError("DLA runs only int8 or fp16 with static shapes (min = opt = max batch); "
                          f"got {key.precision} with batches {'/'.join(map(str, batches))}")
    trt = require_tensorrt()
    fp16 = key.precision == "fp16"
    if fp16 and not hasattr(trt.BuilderFlag, "FP16"):
        raise KarmmaError(
            f"TensorRT {trt.__version__} has no FP16 builder flag (removed in 11): build --precision int8 "
            "from the Q/DQ model, or fp32"
        )
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(_network_flags(trt, strongly_typed=not fp16))
    parser = trt.OnnxParser(network, logger)
    _parse(trt, parser, Path(onnx_path))

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, key.workspace_mb << 20)
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    placement = None
    if key.dla_core is not None:
        _use_dla(trt, builder, config, key.dla_core)
        if hasattr(config, "can_run_on_DLA"):
            placement = _dla_placement(config, network)
    config.add_optimization_profile(_optimization_profile(builder, network, batches))
    cache = _load_timing_cache(config, Path(timing_cache)) if timing_cache is not None else None

    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise KarmmaError(
            f"TensorRT {trt.__version__} could not build an engine from {Path(onnx_path).name} "
            "(its log above says why)"
        )
    shapes = {t.name: tuple(t.shape) for t in (network.get_input(i) for i in range(network.num_inputs))}
    command = trtexec_command(onnx_path, engine_path, key.precision, key.dla_core, timing_cache, shapes,
                              batches[2], key.workspace_mb, major=tensorrt_major(trt), min_batch=batches[0],
                              opt_batch=batches[1])
    store_plan(Path(engine_path), memoryview(plan), key, onnx=str(onnx_path), trtexec=command,
               dla_placement=placement, built_unix=time.time())
    if cache is not None:
        atomic_write(Path(timing_cache), memoryview(cache.serialize()))
    return {"trtexec": command, "dla_placement": placement}


def build_bundle_engines(bundle_root: Path, profiles: Sequence[str] | None = None, precision: str = "int8",
                         cache_dir: Path | None = None, dla_core: int | None = None,
                         workspace_mb: int = DEFAULT_WORKSPACE_MB, progress: Callable[[str], None] | None = None,
                         max_batch: int | None = None, force: bool = False) -> list[dict[str, Any]]:
    """Build (or reuse from the cache) one plan per profile from the bundle's verified ONNX files.

    A cached plan is reused only when its whole key matches: the ONNX, TensorRT, GPU, DLA core,
    batch range and workspace; `force` rebuilds anyway. Returns one record per profile: profile,
    precision, engine path, key, whether it was cached, build seconds, the equivalent trtexec line
    and, on DLA, which layers TensorRT places on the DLA and which on the GPU.
    """
    kind = onnx_kind(precision)
    batches = build_batches(max_batch, dla_core)
    check_bundle_for_build(bundle_root, profiles, precision, dla_core)   # refuses before any engine is built
    require_tensorrt()
    bundle = Bundle(bundle_root)
    cache = engine_cache_dir(cache_dir)
    names = list(profiles or bundle.profiles)
    results = []
    for i, profile in enumerate(names, 1):
        onnx_path = bundle.artifact(profile, kind)
        key = current_device_key(profile, precision, bundle.manifest.profiles[profile].artifacts[kind].sha256,
                                 dla_core, batches, workspace_mb)
        engine = engine_path_for(cache, key)
        cached = not force and is_cached(engine, key)
        if progress:
            progress(f"[{i}/{len(names)}] {profile} {precision}: {'cached' if cached else 'building'} {engine}")
        start = time.perf_counter()
        built = {} if cached else build_engine(onnx_path, engine, key, timing_cache_path(cache, key))
        results.append({
            "profile": profile, "precision": precision, "engine": str(engine), "key": key.to_dict(),
            "cached": cached, "seconds": round(time.perf_counter() - start, 3),
            "trtexec": trtexec_command(onnx_path, engine, precision, dla_core, timing_cache_path(cache, key),
                                       input_shapes_from_manifest(bundle.manifest, profile), batches[2],
                                       workspace_mb, major=int(key.tensorrt_version.split(".")[0]),
                                       min_batch=batches[0], opt_batch=batches[1]),
            "dla_placement": built.get("dla_placement"),
        })
    return results
