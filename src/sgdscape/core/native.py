"""Precompiled C kernels for the landscape's and the seed's training hot loops: built once
per machine, loaded in milliseconds by every later process.

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

Training (:func:`relu_sgd_steps`, :func:`relu_moments`): the seed's one-sample SGD on
``w1 * relu(w2 * x)`` with the squared error, every step of a block of inits in one loop
that writes the iterates, gradients and losses straight into the records, and the risk and
full gradient at every iterate from the data's moments; the same float32 (float64 for the
moments) operations as :mod:`sgdscape.core.row_steps` and :func:`sgdscape.core.path.moment_path`,
so the records are equal bit for bit (see there for the multiply-adds). Split over inits
across threads.

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

SOURCE += r"""
/* ---- training: one-sample SGD on the relu unit w1 * relu(w2 * x) with the squared error ----
   The row engine's float32 operations (sgdscape.core.row_steps) in its order, per init k:
   iterate recorded, r = relu(w2 x) (torch's max(0, z): keeps -0 and NaN), g = w1 r - y,
   loss g * g, g = 2 g, d1 = 0 + g r, gz = (r <= 0 ? 0 : g w1), d2 = 0 + gz x, then
   w += (-lr) d. MAC(a, b, c) is a * b + c as torch's CPU kernels compute it for addcmul,
   add(alpha=) and add_(alpha=): one rounding (fmaf) where they fuse it (AVX2, AVX-512),
   two where they do not; the library has both and sgdscape.core.row_steps picks the one
   that matches this process's torch. Records are (T, 2, n), (T, 2, n), (T, n); w is (2, n). */
#define MAC_FUSED(a, b, c) __builtin_fmaf((a), (b), (c))
#define MAC_SPLIT(a, b, c) ((a) * (b) + (c))
#define RELU_SGD(NAME, MAC)                                                                \
void NAME(float *restrict w, float *restrict iterates, float *restrict grads,             \
          float *restrict loss, const float *restrict xs, const float *restrict ys,        \
          const float *restrict alphas, long t0, long t1, long n, long k0, long k1) {      \
    float *restrict w1 = w, *restrict w2 = w + n;                                          \
    for (long t = t0; t < t1; t++) {                                                       \
        const float x = xs[t], y = ys[t], alpha = alphas[t];                               \
        float *restrict i1 = iterates + t * 2 * n, *restrict i2 = i1 + n;                  \
        float *restrict g1 = grads + t * 2 * n, *restrict g2 = g1 + n;                     \
        float *restrict l = loss + t * n;                                                  \
        for (long k = k0; k < k1; k++) {                                                   \
            const float v1 = w1[k], v2 = w2[k];                                            \
            i1[k] = v1;                                                                    \
            i2[k] = v2;                                                                    \
            const float z = v2 * x;                                                        \
            const float r = (0.0f > z) ? 0.0f : z;                                         \
            float g = v1 * r;                                                              \
            g = g - y;                                                                     \
            l[k] = g * g;                                                                  \
            g = g * 2.0f;                                                                  \
            const float d1 = MAC(g, r, 0.0f);                                              \
            float gz = g * v1;                                                             \
            gz = (r <= 0.0f) ? 0.0f : gz;                                                  \
            const float d2 = MAC(gz, x, 0.0f);                                             \
            g1[k] = d1;                                                                    \
            g2[k] = d2;                                                                    \
            w1[k] = MAC(d1, alpha, v1);                                                    \
            w2[k] = MAC(d2, alpha, v2);                                                    \
        }                                                                                  \
    }                                                                                      \
}

RELU_SGD(sg_relu_sgd_fused, MAC_FUSED)
RELU_SGD(sg_relu_sgd_split, MAC_SPLIT)

/* the risk and its gradient at iterates (T, 2, n) of the relu unit with the squared error
   from the data's moments (sgdscape.core.path.moment_path, same float64 operations, rounded
   once): c = {a+, a-, c_best+, c_best-, r_best+, r_best-}. Returns how many of the values
   written for inits k0 <= k < k1 are not finite. */
#if defined(__clang__)
#define SELECT_ATTR
#else /* GCC if-converts the branch selects only when comparisons may not trap; values are
         the same IEEE operations either way */
#define SELECT_ATTR __attribute__((optimize("no-trapping-math")))
#endif

SELECT_ATTR long sg_relu_moments(const float *restrict iterates, float *restrict risk, float *restrict full,
                     const double *restrict c, long T, long n, long k0, long k1) {
    const double a_up = c[0], a_down = c[1], best_up = c[2], best_down = c[3];
    const double floor_up = c[4], floor_down = c[5];
    long bad = 0;
    for (long t = 0; t < T; t++) {
        const float *restrict i1 = iterates + t * 2 * n, *restrict i2 = i1 + n;
        float *restrict f1 = full + t * 2 * n, *restrict f2 = f1 + n;
        float *restrict rk = risk + t * n;
        for (long k = k0; k < k1; k++) {
            const double w1 = i1[k], w2 = i2[k];
            const int up = w2 > 0.0;
            const double a = up ? a_up : a_down;
            const double size = __builtin_fabs(w2);
            double e = w1 * size;
            e = e - (up ? best_up : best_down);
            double q = e * e;
            q = q * a;
            const float value = (float)(q + (up ? floor_up : floor_down));
            e = e * a;
            e = e * 2.0;
            const double sign = (double)(w2 > 0.0) - (double)(w2 < 0.0);
            const float d1 = (float)(size * e);
            double d = e * w1;
            const float d2 = (float)(d * sign);
            rk[k] = value;
            f1[k] = d1;
            f2[k] = d2;
            /* v - v is 0 exactly when v is finite */
            const float finite = (value - value) + (d1 - d1) + (d2 - d2);
            bad += finite != 0.0f;
        }
    }
    return bad;
}
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


#: a build serves every later call and process on the machine: a call is charged 1/this of it
TRAIN_BUILD_SHARE = 4

#: seconds this process spent on torch paths that the library would have served (the
#: training kernels' fallbacks): a build is charged less by what it would already have saved
torch_seconds_spent = 0.0


def startup_charge() -> float:
    """What ``engine="auto"`` charges a training kernel call for the library: 0 once loaded,
    the load (about 2 ms) when it is on disk, otherwise a share of the measured build
    (1/:data:`TRAIN_BUILD_SHARE`) less what this process already spent on the torch paths it
    would have served (so a process that keeps paying for them builds it once); ``inf``
    when it cannot be had. Its results equal the torch paths' bit for bit, so the choice
    changes only the time, never a record."""
    startup = startup_seconds()
    if startup < 0.01 or startup == float("inf"):
        return startup
    return max(0.002, startup / TRAIN_BUILD_SHARE - torch_seconds_spent)


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
        for name in ("sg_relu_sgd_fused", "sg_relu_sgd_split"):
            function = getattr(loaded, name)
            function.argtypes = [pointer] * 7 + [ctypes.c_long] * 5
            function.restype = None
        loaded.sg_relu_moments.argtypes = [pointer] * 4 + [ctypes.c_long] * 4
        loaded.sg_relu_moments.restype = ctypes.c_long
        _library = loaded
        return _library


def loaded() -> bool:
    """Whether the kernels are loaded in this process (no start-up left to pay)."""
    return _library is not None


def reset() -> None:
    """Forget the loaded library and any failure (tests: after changing the cache dir)."""
    global _library, _failed, torch_seconds_spent
    with _lock:
        _library, _failed = None, False
        torch_seconds_spent = 0.0


def _loaded_library() -> ctypes.CDLL:
    """:func:`library`, for callers that were told the kernels are available."""
    lib = library()
    if lib is None:
        raise RuntimeError("native kernels unavailable")
    return lib


def _in_threads(tasks: list[tuple[object, ...]], function: Callable[..., object]) -> list[object]:
    """``function(*task)`` for every task, split over threads; their results in order."""
    global _pool, _pool_size, _pool_pid
    if len(tasks) == 1:
        return [function(*tasks[0])]
    # a forked child inherits the pool object but not its threads: it makes its own
    if _pool is None or _pool_size < len(tasks) or _pool_pid != os.getpid():
        _pool = ThreadPoolExecutor(max_workers=len(tasks), thread_name_prefix="sgdscape-native")
        _pool_size, _pool_pid = len(tasks), os.getpid()
    return [future.result() for future in [_pool.submit(function, *task) for task in tasks]]


def release_threads() -> None:
    """End the kernels' worker threads, which wait idle between calls (the next call
    starts new ones). A process about to end calls it, so that only threads with work in
    progress are left to wait for."""
    global _pool, _pool_size
    with _lock:
        pool, _pool, _pool_size = _pool, None, 0
    if pool is not None and _pool_pid == os.getpid():
        pool.shutdown(wait=True)


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
    lib = _loaded_library()
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
    lib = _loaded_library()
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


#: below this many init-steps a training kernel call runs on the calling thread alone
TRAIN_SINGLE_THREAD_BELOW = 2**16


def _init_splits(n_inits: int, work: int, threads: int) -> list[tuple[int, int]]:
    """Ranges of inits for ``threads`` threads, cut at multiples of 16 (whole cache lines)."""
    parts = 1 if work < TRAIN_SINGLE_THREAD_BELOW else max(1, threads)
    edges = sorted({min(n_inits, 16 * round(n_inits * i / parts / 16)) for i in range(parts)})
    edges = [*edges, n_inits]
    return [(a, b) for a, b in itertools.pairwise(edges) if b > a]


def relu_sgd_steps(
    w: np.ndarray,
    iterates: np.ndarray,
    grads: np.ndarray,
    loss: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    alphas: np.ndarray,
    steps: tuple[int, int],
    fused: bool,
    threads: int = 1,
) -> None:
    """Steps ``t0 <= t < t1`` of one-sample SGD on ``w1 * relu(w2 * x)`` with the squared
    error, recorded like :func:`sgdscape.core.row_steps.take_row_steps`.

    Args:
        w: ``(2, K)`` float32 rows of the iterate, updated in place.
        iterates, grads: ``(T, 2, K)`` float32 records; ``loss``: ``(T, K)``.
        x, y: ``(T,)`` float32: the sample of each step.
        alphas: ``(T,)`` float32: ``-lr`` of each step, rounded to float32 as torch does.
        steps: ``(t0, t1)``.
        fused: whether ``a * b + c`` rounds once (torch's AVX2 and AVX-512 kernels) or twice.
        threads: CPU threads to split the inits over.
    """
    lib = _loaded_library()
    n_inits = w.shape[1]
    if (
        iterates.shape[1:] != w.shape
        or grads.shape != iterates.shape
        or loss.shape[1:] != (n_inits,)
    ):
        raise ValueError("records must be (T, 2, K), (T, 2, K), (T, K) for w (2, K)")
    pointers = (
        _pointer(w, np.float32),
        _pointer(iterates, np.float32),
        _pointer(grads, np.float32),
        _pointer(loss, np.float32),
        _pointer(x, np.float32),
        _pointer(y, np.float32),
        _pointer(alphas, np.float32),
    )
    t0, t1 = steps
    if not 0 <= t0 <= t1 <= min(len(x), len(y), len(alphas), iterates.shape[0]):
        raise ValueError(f"steps {steps} outside the records")
    function = lib.sg_relu_sgd_fused if fused else lib.sg_relu_sgd_split
    splits = _init_splits(n_inits, n_inits * (t1 - t0), threads)
    _in_threads([(*pointers, t0, t1, n_inits, a, b) for a, b in splits], function)
    calls["relu-sgd"] += 1


def relu_moments(
    iterates: np.ndarray,
    risk: np.ndarray,
    full: np.ndarray,
    constants: np.ndarray,
    threads: int = 1,
) -> int:
    """Risk and gradient of the relu unit with the squared error from the data's moments at
    every iterate (:func:`sgdscape.core.path.moment_path`'s float64 operations); returns
    how many written values are not finite.

    Args:
        iterates: ``(T, 2, K)`` float32.
        risk: ``(T, K)`` float32, written; ``full``: ``(T, 2, K)`` float32, written.
        constants: ``(6,)`` float64: ``a``, ``c_best``, ``r_best`` of the branches
            ``w2 > 0`` and ``w2 <= 0``, interleaved (``a+, a-, c+, c-, r+, r-``).
        threads: CPU threads to split the inits over.
    """
    lib = _loaded_library()
    n_steps, n_params, n_inits = iterates.shape
    if n_params != 2 or full.shape != iterates.shape or risk.shape != (n_steps, n_inits):
        raise ValueError("iterates and full must be (T, 2, K), risk (T, K)")
    if constants.shape != (6,):
        raise ValueError("constants must be (6,)")
    pointers = (
        _pointer(iterates, np.float32),
        _pointer(risk, np.float32),
        _pointer(full, np.float32),
        _pointer(constants, np.float64),
    )
    splits = _init_splits(n_inits, n_inits * n_steps, threads)
    counts = _in_threads(
        [(*pointers, n_steps, n_inits, a, b) for a, b in splits], lib.sg_relu_moments
    )
    calls["relu-moments"] += 1
    return sum(int(count) for count in counts)  # type: ignore[call-overload]
