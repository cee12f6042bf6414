"""Whether bfloat16 autocast is safe on this CPU, found out once in a child process.

On some CPUs that advertise AMX, oneDNN's AMX kernels die with SIGILL (for example when the
kernel or hypervisor does not grant AMX state), and the whole process goes with them. A
child process runs the bf16 conv and matmul that training runs; if it dies, a second child
tries again with oneDNN capped below AMX (``ONEDNN_MAX_CPU_ISA``). The verdict is cached per
process and on disk, keyed by the torch version, the CPU flags and the probe.

oneDNN reads its ISA cap once, when it first runs, so ``prepare`` must be called before this
process computes anything with torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from fogsim.data.locations import user_cache_dir

ISA_ENV = "ONEDNN_MAX_CPU_ISA"
ISA_CAP = "AVX512_CORE_BF16"  # the highest ISA below AMX: bf16 runs on AVX-512 instead
NATIVE, CAPPED, FP32 = "native", "capped", "fp32"
PROBE_TIMEOUT_S = 300

# What training runs: a channels-last conv, a linear layer and a plain matmul under bf16
# autocast, and their backward pass; then a plain bf16 matmul.
PROBE = """
import torch
torch.manual_seed(0)
conv = torch.nn.Conv2d(16, 32, 3, padding=1).to(memory_format=torch.channels_last)
lin = torch.nn.Linear(32, 10)
x = torch.rand(16, 16, 32, 32).contiguous(memory_format=torch.channels_last)
with torch.autocast("cpu", dtype=torch.bfloat16):
    h = conv(x)
    loss = lin(h.mean((2, 3))).float().sum() + (h.flatten(1) @ h.flatten(1).T).float().mean()
loss.backward()
a = torch.rand(128, 128, dtype=torch.bfloat16)
(a @ a).sum().item()
"""

_verdicts: dict[str, str] = {}
_noticed: set[str] = set()


def _cpu_flags() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    wanted = [line for line in lines if line.split(":")[0].strip() in ("model name", "flags")]
    return "\n".join(dict.fromkeys(wanted)) or f"{platform.machine()} {platform.processor()}"


def _key(code: str) -> str:
    import torch

    parts = [torch.__version__, _cpu_flags(), code, os.environ.get(ISA_ENV, "")]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:32]


def _passes(code: str, env: dict[str, str]) -> tuple[bool, bool]:
    """Whether the probe exits cleanly, and whether the answer is final (not a timeout)."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            capture_output=True,
            timeout=PROBE_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return False, False
    return done.returncode == 0, True


def _probe(code: str) -> tuple[str, bool]:
    env = dict(os.environ)
    ok, final = _passes(code, env)
    if ok:
        return NATIVE, True
    ok, capped_final = _passes(code, {**env, ISA_ENV: ISA_CAP})
    return (CAPPED if ok else FP32), final and capped_final


def verdict(code: str | None = None, cache_dir: Path | None = None) -> str:
    """``native``, ``capped`` (bf16 works with oneDNN below AMX) or ``fp32`` (bf16 crashes),
    for ``code`` (default: ``PROBE``)."""
    code = PROBE if code is None else code
    key = _key(code)
    if key in _verdicts:
        return _verdicts[key]
    path = (user_cache_dir() if cache_dir is None else Path(cache_dir)) / f"bf16-probe-{key}.json"
    found = _read(path)
    if found is None:
        found, final = _probe(code)
        if final:
            _write(path, found)
    _verdicts[key] = found
    return found


def _read(path: Path) -> str | None:
    try:
        found = json.loads(path.read_text()).get("verdict")
    except (OSError, ValueError, AttributeError):
        return None
    return found if found in (NATIVE, CAPPED, FP32) else None


def _write(path: Path, found: str) -> None:
    # The cache only saves a subprocess; a read-only home must not stop training.
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"verdict": found}))
        os.replace(tmp, path)
    except OSError:
        pass


def prepare(
    code: str | None = None, cache_dir: Path | None = None, log: Callable[[str], None] = print
) -> bool:
    """Make bf16 autocast safe in this process and say whether to use it: caps oneDNN's ISA
    where that is what it takes, and says once, in one line, when bf16 must give way to fp32.
    Call it before torch computes anything in this process."""
    found = verdict(code, cache_dir)
    if found == CAPPED:
        os.environ[ISA_ENV] = ISA_CAP
        _notice(
            log,
            f"bf16 crashes oneDNN's AMX kernels on this CPU; capping it at {ISA_ENV}={ISA_CAP}",
        )
    elif found == FP32:
        _notice(
            log,
            "bf16 autocast crashes on this CPU (even with oneDNN capped at "
            f"{ISA_CAP}); running in fp32 instead",
        )
    return found != FP32


def _notice(log: Callable[[str], None], line: str) -> None:
    if line not in _noticed:
        _noticed.add(line)
        log(line)


def autocast_precision(
    requested: str | None, device: str = "cpu", log: Callable[[str], None] = print
) -> str | None:
    """The autocast a run can use: ``requested``, or None (fp32) where bf16 crashes the CPU."""
    if requested != "bf16" or not device.startswith("cpu"):
        return requested
    return requested if prepare(log=log) else None
