"""Precompiled C kernels for the landscape's hot loops: built once per machine, loaded in
milliseconds by every later process.

The landscape of a scale-parameter model (``f(w, x) = w[s] * h(others, x)``, see
:data:`sgdscape.core.kernels.SCALE_PARAMETER`) on a grid whose first axis is ``w[s]`` reduces
to two loops over plain float32 arrays: every per-sample loss ``loss(scale[g1] *
hidden[g2, i], y[i])`` written into its output, and their sum over samples. This module holds
them as a few dozen lines of C (:data:`SOURCE`), compiled with the system's C compiler
(``$CC``, else ``cc``) into a shared library cached under ``~/.cache/sgdscape/native``
(``$SGDSCAPE_CACHE_DIR`` or ``$XDG_CACHE_HOME`` move it), keyed by a hash of the source,
the compiler, its flags and the CPU. The first use on a machine builds it (about 0.3 to
1 s, measured and remembered beside the library); every later process loads it with
``ctypes`` in about a millisecond. No compilation happens at call time, and nothing is
imported beyond the standard library and numpy.

Exactness: the per-sample kernels compute ``d = scale * h - y`` and the loss in float32
with the same operations as torch's eager code and no contraction into fused multiply-adds
(``-ffp-contract=off``), so they equal the plain path bit for bit. The risk kernels sum
with fused multiply-adds in float32 over blocks of 256 samples and in float64 across
blocks: equal to the plain path within float rounding.

Threads: ``ctypes`` releases the GIL during a call, so the work is split across
``threads`` Python threads (rows for the risk, samples for the per-sample grids: each
thread first-touches its own part of a fresh output).

Without a C compiler (or if building fails) :func:`library` returns ``None``, one line is
logged, and the caller takes the torch paths.
"""

from __future__ import annotations

import ctypes
import hashlib
import itertools
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

log = logging.getLogger("sgdscape")

#: losses with a native kernel, and their index in the C code.
LOSSES = {"mse": 0, "mae": 1, "huber": 2}

SOURCE = r"""
#include <stddef.h>
#include <string.h>

#if defined(__AVX512F__)
#define VW 16
#else
#define VW 8
#endif
#define K 4        /* independent accumulators per grid row: hides the add latency */
#define IB 256     /* samples summed in float32 before the float64 total */

typedef float vf __attribute__((vector_size(VW * 4), aligned(4)));
typedef int vi __attribute__((vector_size(VW * 4), aligned(4)));

#if defined(__clang__)
#define CONTRACT _Pragma("clang fp contract(fast)")
#define RISK_ATTR
#else
#define CONTRACT
#define RISK_ATTR __attribute__((optimize("fp-contract=fast")))
#endif

/* macros, not functions: sg_risk has its own optimisation attribute, and GCC does not
   inline functions compiled with other options into it */
#define VLOAD(p) ({ vf v_; memcpy(&v_, (p), sizeof v_); v_; })
#define VABS(a) ((vf)((vi)(a) & 0x7fffffff))
"""

SOURCE += r"""
/* the loss of a residual d, scalar and vector, in torch's operation order */
#define LOSS_MSE(d) ((d) * (d))
#define LOSS_MAE(d) (__builtin_fabsf(d))
#define LOSS_HUBER(d) (__builtin_fabsf(d) < 1.0f ? 0.5f * (__builtin_fabsf(d) * __builtin_fabsf(d)) \
                                                 : __builtin_fabsf(d) - 0.5f)

#define VHUBER(r) ((vf)((((r) < 1.0f) & (vi)(0.5f * ((r) * (r)))) | (~((r) < 1.0f) & (vi)((r) - 0.5f))))
#define SLOSS(kind, d) ((kind) == 0 ? LOSS_MSE(d) : (kind) == 1 ? LOSS_MAE(d) : LOSS_HUBER(d))

/* out[i, r, c] = loss(scale[c] * ht[i, r] - y[i]) for samples i0 <= i < i1;
   out: (n, R, C), ht: (n, R), exactly the plain path's float32 operations */
#define FILL(NAME, EXPR)                                                                   \
void NAME(float *restrict out, const float *restrict scale, const float *restrict ht,     \
          const float *restrict y, long R, long C, long i0, long i1) {                    \
    for (long i = i0; i < i1; i++) {                                                       \
        const float t = y[i];                                                              \
        for (long r = 0; r < R; r++) {                                                     \
            const float h = ht[i * R + r];                                                 \
            float *restrict o = out + (i * R + r) * C;                                     \
            for (long c = 0; c < C; c++) {                                                 \
                const float p = scale[c] * h;                                              \
                const float d = p - t;                                                     \
                o[c] = EXPR(d);                                                            \
            }                                                                              \
        }                                                                                  \
    }                                                                                      \
}

FILL(sg_fill_mse, LOSS_MSE)
FILL(sg_fill_mae, LOSS_MAE)
FILL(sg_fill_huber, LOSS_HUBER)

/* total[r, c] += sum_i loss(scale[c] * hidden[r, i] - y[i]) for rows r0 <= r < r1;
   total: (R, C) float64, hidden: (R, n) */
RISK_ATTR void sg_risk(int kind, double *restrict total, const float *restrict scale,
                       const float *restrict hidden, const float *restrict y,
                       long R, long C, long n, long r0, long r1) {
    CONTRACT
    const long block = VW * K;
    for (long r = r0; r < r1; r++) {
        const float *restrict h = hidden + r * n;
        double *restrict row = total + r * C;
        long c0 = 0;
        for (; c0 + block <= C; c0 += block) {
            vf s[K];
            for (int k = 0; k < K; k++) s[k] = VLOAD(scale + c0 + k * VW);
            for (long i0 = 0; i0 < n; i0 += IB) {
                const long i1 = i0 + IB < n ? i0 + IB : n;
                vf acc[K];
                for (int k = 0; k < K; k++) acc[k] = (vf){0};
                if (kind == 0) {
                    for (long i = i0; i < i1; i++) {
                        const float hv = h[i], tv = y[i];
                        for (int k = 0; k < K; k++) {
                            const vf d = s[k] * hv - tv;
                            acc[k] = d * d + acc[k];
                        }
                    }
                } else if (kind == 1) {
                    for (long i = i0; i < i1; i++) {
                        const float hv = h[i], tv = y[i];
                        for (int k = 0; k < K; k++) acc[k] += VABS(s[k] * hv - tv);
                    }
                } else {
                    for (long i = i0; i < i1; i++) {
                        const float hv = h[i], tv = y[i];
                        for (int k = 0; k < K; k++) {
                            const vf r = VABS(s[k] * hv - tv);
                            acc[k] += VHUBER(r);
                        }
                    }
                }
                for (int k = 0; k < K; k++)
                    for (int j = 0; j < VW; j++) row[c0 + k * VW + j] += (double)acc[k][j];
            }
        }
        for (; c0 + VW <= C; c0 += VW) { /* one vector of columns at a time */
            const vf s1 = VLOAD(scale + c0);
            for (long i0 = 0; i0 < n; i0 += IB) {
                const long i1 = i0 + IB < n ? i0 + IB : n;
                vf acc = (vf){0};
                for (long i = i0; i < i1; i++) {
                    const vf d = s1 * h[i] - y[i];
                    if (kind == 0) acc = d * d + acc;
                    else if (kind == 1) acc += VABS(d);
                    else { const vf r = VABS(d); acc += VHUBER(r); }
                }
                for (int j = 0; j < VW; j++) row[c0 + j] += (double)acc[j];
            }
        }
        for (long c = c0; c < C; c++) {
            double sum = 0.0;
            for (long i0 = 0; i0 < n; i0 += IB) {
                const long i1 = i0 + IB < n ? i0 + IB : n;
                float part = 0.0f;
                for (long i = i0; i < i1; i++) { const float d = scale[c] * h[i] - y[i]; part += SLOSS(kind, d); }
                sum += (double)part;
            }
            row[c] += sum;
        }
    }
}

int sg_abi(void) { return 1; }
"""

_lock = threading.Lock()
_library: ctypes.CDLL | None = None
_failed = False
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_pid = 0

#: how many times this process built the library (tests check that a cache hit builds none).
builds = 0

#: how many kernel calls ran (``"fill"``, ``"risk"``): tells a native run from a fallback.
calls: Counter[str] = Counter()

#: build seconds assumed before this machine has measured one (a small C file, -O3).
DEFAULT_BUILD_SECONDS = 1.0

_FLAGS = ("-O3", "-march=native", "-ffp-contract=off", "-fPIC", "-shared", "-std=gnu11")


def cache_dir() -> str:
    """Where built libraries live: ``$SGDSCAPE_CACHE_DIR/native``, else the XDG cache."""
    base = os.environ.get("SGDSCAPE_CACHE_DIR")
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        base = os.path.join(xdg, "sgdscape")
    return os.path.join(base, "native")


def _compiler() -> str | None:
    name = os.environ.get("CC", "cc")
    return shutil.which(name)


def _cpu_identity() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith(("flags", "Features")):
                    return line.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def library_path(compiler: str | None = None) -> str | None:
    """Path of this machine's library in the cache (it may not exist yet); ``None`` without
    a C compiler or on a platform without shared libraries loadable this way."""
    compiler = compiler or _compiler()
    if compiler is None or sys.platform == "win32":
        return None
    key = hashlib.sha256(
        "\0".join([SOURCE, compiler, *_FLAGS, platform.machine(), _cpu_identity()]).encode()
    ).hexdigest()[:20]
    return os.path.join(cache_dir(), f"kernels-{key}.so")


def _timing_path() -> str:
    return os.path.join(cache_dir(), "build-seconds.json")


def build_seconds() -> float:
    """Seconds the last build on this machine took (:data:`DEFAULT_BUILD_SECONDS` if none)."""
    try:
        with open(_timing_path()) as handle:
            return float(json.load(handle)["seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return DEFAULT_BUILD_SECONDS


def startup_seconds() -> float:
    """What the next native call costs before it computes: 0 when loaded, about a
    millisecond when the library is on disk, the measured build time otherwise; ``inf``
    when it cannot be had (no compiler, or building failed in this process)."""
    if _library is not None:
        return 0.0
    if _failed:
        return float("inf")
    path = library_path()
    if path is None:
        return float("inf")
    return 0.002 if os.path.exists(path) else build_seconds()


def built() -> bool:
    """Whether this machine's library is in the cache (loading it costs about a millisecond)."""
    path = library_path()
    return path is not None and os.path.exists(path)


def _build(compiler: str, path: str) -> None:
    global builds
    os.makedirs(os.path.dirname(path), exist_ok=True)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=os.path.dirname(path)) as work:
        source = os.path.join(work, "kernels.c")
        with open(source, "w") as handle:
            handle.write(SOURCE)
        target = os.path.join(work, "kernels.so")
        for flags in (_FLAGS, tuple(f for f in _FLAGS if f != "-march=native")):
            # a compiler that does not know -march=native still builds portable code
            completed = subprocess.run(
                [compiler, *flags, source, "-o", target],
                capture_output=True,
                text=True,
                check=False,
            )
            if completed.returncode == 0:
                break
        if completed.returncode != 0:
            raise OSError(completed.stderr.strip().splitlines()[-1] if completed.stderr else "")
        os.replace(target, path)  # atomic: a concurrent process sees all of it or nothing
    builds += 1
    seconds = time.perf_counter() - began
    try:
        with tempfile.NamedTemporaryFile("w", dir=cache_dir(), delete=False) as record:
            json.dump({"seconds": seconds}, record)
        os.replace(record.name, _timing_path())
    except OSError:
        pass
    log.debug("built the native landscape kernels in %.2f s: %s", seconds, path)


def library() -> ctypes.CDLL | None:
    """The loaded kernels, building them first if this machine has none; ``None`` if they
    cannot be had (one logged line)."""
    global _library, _failed
    if _library is not None or _failed:
        return _library
    with _lock:
        if _library is not None or _failed:
            return _library
        compiler = _compiler()
        path = library_path(compiler)
        try:
            if compiler is None or path is None:
                raise OSError("no C compiler (set $CC)")
            if not os.path.exists(path):
                _build(compiler, path)
            loaded = ctypes.CDLL(path)
            if loaded.sg_abi() != 1:
                raise OSError(f"{path} is not this version's library")
        except (OSError, subprocess.SubprocessError) as error:
            _failed = True
            reason = str(error).strip() or type(error).__name__
            log.warning("native landscape kernels unavailable (%s); using torch.", reason[:160])
            return None
        pointer = ctypes.c_void_p
        for name in ("sg_fill_mse", "sg_fill_mae", "sg_fill_huber"):
            function = getattr(loaded, name)
            function.argtypes = [pointer] * 4 + [ctypes.c_long] * 4
            function.restype = None
        loaded.sg_risk.argtypes = [ctypes.c_int] + [pointer] * 4 + [ctypes.c_long] * 5
        loaded.sg_risk.restype = None
        _library = loaded
        return _library


def loaded() -> bool:
    """Whether the kernels are loaded in this process (no start-up left to pay)."""
    return _library is not None


def reset() -> None:
    """Forget the loaded library and any failure (tests: after changing the cache dir)."""
    global _library, _failed
    with _lock:
        _library, _failed = None, False


def _in_threads(tasks: list[tuple[object, ...]], function: Callable[..., object]) -> None:
    global _pool, _pool_size, _pool_pid
    if len(tasks) == 1:
        function(*tasks[0])
        return
    # a forked child inherits the pool object but not its threads: it makes its own
    if _pool is None or _pool_size < len(tasks) or _pool_pid != os.getpid():
        _pool = ThreadPoolExecutor(max_workers=len(tasks), thread_name_prefix="sgdscape-native")
        _pool_size, _pool_pid = len(tasks), os.getpid()
    for future in [_pool.submit(function, *task) for task in tasks]:
        future.result()


def _pointer(array: np.ndarray, dtype: type) -> int:
    if array.dtype != dtype or not array.flags.c_contiguous:
        raise ValueError(f"expected a C-contiguous {np.dtype(dtype).name} array")
    return array.ctypes.data


def _splits(total: int, parts: int) -> list[tuple[int, int]]:
    parts = max(1, min(parts, total))
    edges = np.linspace(0, total, parts + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in itertools.pairwise(edges) if b > a]


#: below this many loss evaluations a call runs on the calling thread alone.
SINGLE_THREAD_BELOW = 2**20


def scaled_fill(
    out: np.ndarray,
    scale: np.ndarray,
    hidden_t: np.ndarray,
    y: np.ndarray,
    loss: str,
    threads: int = 1,
) -> None:
    """Write ``loss(scale[c] * hidden_t[i, r] - y[i])`` into ``out[i, r, c]``.

    Args:
        out: ``(n, G2, G1)`` float32, C-contiguous, written entirely (may be fresh memory).
        scale: ``(G1,)`` float32: the scale parameter along the grid's columns.
        hidden_t: ``(n, G2)`` float32: the model's hidden value per sample and grid row.
        y: ``(n,)`` float32 targets.
        loss: a key of :data:`LOSSES`.
        threads: CPU threads to split the samples over.
    """
    lib = library()
    if lib is None:
        raise RuntimeError("native kernels unavailable")
    n, rows, columns = out.shape
    function = getattr(lib, f"sg_fill_{loss}")
    pointers = (
        _pointer(out, np.float32),
        _pointer(scale, np.float32),
        _pointer(hidden_t, np.float32),
        _pointer(y, np.float32),
    )
    parts = 1 if out.size < SINGLE_THREAD_BELOW else threads
    _in_threads([(*pointers, rows, columns, a, b) for a, b in _splits(n, parts)], function)
    calls["fill"] += 1


def scaled_risk(
    total: np.ndarray,
    scale: np.ndarray,
    hidden: np.ndarray,
    y: np.ndarray,
    loss: str,
    threads: int = 1,
) -> None:
    """Add ``sum_i loss(scale[c] * hidden[r, i] - y[i])`` to ``total[r, c]``.

    Args:
        total: ``(G2, G1)`` float64, C-contiguous, accumulated into.
        scale: ``(G1,)`` float32.
        hidden: ``(G2, n)`` float32.
        y: ``(n,)`` float32.
        loss: a key of :data:`LOSSES`.
        threads: CPU threads to split the grid rows over.
    """
    lib = library()
    if lib is None:
        raise RuntimeError("native kernels unavailable")
    rows, columns = total.shape
    n = hidden.shape[1]
    pointers = (
        _pointer(total, np.float64),
        _pointer(scale, np.float32),
        _pointer(hidden, np.float32),
        _pointer(y, np.float32),
    )
    parts = 1 if rows * columns * n < SINGLE_THREAD_BELOW else threads
    _in_threads(
        [(LOSSES[loss], *pointers, rows, columns, n, a, b) for a, b in _splits(rows, parts)],
        lib.sg_risk,
    )
    calls["risk"] += 1
