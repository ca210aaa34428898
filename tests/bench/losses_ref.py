#!/usr/bin/env python3
"""losses_ref.py - PyTorch reference for cliplab's contrastive losses (Debian's python3-torch).

1. Cross-check: calls the C losses through ctypes (libcliplab.so, or any shared library holding
   core/losses) and compares value and every gradient with torch autograd in float64, for every
   loss, dense and tiled, symmetric and one-sided. Exits 1 on a mismatch.
2. Timing: torch's dense infonce forward+backward (float32, autograd) at the sizes of
   bench_losses.c's first table that fit dense, to put the C numbers side by side.

Usage: tests/bench/losses_ref.py [--lib build/libcliplab.so] [--no-timing]
Deliberately left out: timing the other losses (table 1 of the C bench is infonce only).
"""
import argparse
import ctypes
import math
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

# the losses torch_loss writes out; their registry indices come from the library (loss_find)
KINDS = ("infonce", "siglip", "dcl", "align_uniform")
N_SCALARS = {"infonce": 1, "siglip": 2, "dcl": 1, "align_uniform": 0}


class LossConfig(ctypes.Structure):
    _fields_ = [("kind", ctypes.c_int), ("one_sided", ctypes.c_int),
                ("learn_temperature", ctypes.c_int), ("lambda_", ctypes.c_float),
                ("tile", ctypes.c_int), ("init_temperature", ctypes.c_float),
                ("group_size", ctypes.c_int), ("init_logit_scale", ctypes.c_float),
                ("init_bias", ctypes.c_float)]


def torch_loss(kind, img, txt, sc, one_sided, lam):
    """The definitions of core/losses/losses.h, written with torch ops."""
    n = img.shape[0]
    if kind in ("infonce", "dcl"):
        s = sc[0].exp()
        logits = s * img @ txt.T
        if kind == "infonce":
            rows = F.cross_entropy(logits, torch.arange(n))
            cols = F.cross_entropy(logits.T, torch.arange(n))
        else:
            eye = torch.eye(n, dtype=torch.bool)
            masked = logits.masked_fill(eye, float("-inf"))
            diag = logits.diagonal()
            rows = (masked.logsumexp(1) - diag).mean()
            cols = (masked.logsumexp(0) - diag).mean()
        return rows if one_sided else 0.5 * (rows + cols)
    if kind == "siglip":
        z = 2.0 * torch.eye(n, dtype=img.dtype) - 1.0
        u = sc[0].exp() * img @ txt.T + sc[1]
        return -F.logsigmoid(z * u).sum() / n
    align = (img - txt).pow(2).sum(1).mean()
    unif = lambda x: torch.pdist(x).pow(2).mul(-2.0).exp().mean().log()
    return align + lam * (unif(img) + unif(txt))


def c_loss(lib, kind, img, txt, sc, one_sided, lam, tile):
    n, d = img.shape
    cfg = LossConfig(lib.loss_find(kind.encode()), one_sided, 1, lam, tile, 0.07, 0, 10.0, -10.0)
    img32 = np.ascontiguousarray(img, dtype=np.float32)
    txt32 = np.ascontiguousarray(txt, dtype=np.float32)
    sc32 = np.zeros(2, dtype=np.float32)
    sc32[: len(sc)] = sc
    dimg = np.zeros_like(img32)
    dtxt = np.zeros_like(txt32)
    dsc = np.zeros(2, dtype=np.float32)
    ptr = lambda a: a.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
    loss = lib.loss_forward_backward(ctypes.byref(cfg), ptr(dimg), ptr(dtxt), ptr(dsc), ptr(img32),
                                     ptr(txt32), ptr(sc32), n, d, None)
    return loss, dimg, dtxt, dsc[: len(sc)]


def cross_check(lib):
    lib.loss_forward_backward.restype = ctypes.c_float
    rng = np.random.default_rng(3)
    worst = 0.0
    for kind in KINDS:
        for one_sided in ((0, 1) if kind in ("infonce", "dcl") else (0,)):
            for tile in (0, 7):
                n, d, lam = 29, 12, 0.8
                img = rng.normal(size=(n, d))
                txt = img + 0.7 * rng.normal(size=(n, d))
                img /= np.linalg.norm(img, axis=1, keepdims=True)
                txt /= np.linalg.norm(txt, axis=1, keepdims=True)
                sc = {"infonce": [math.log(1 / 0.07)], "dcl": [math.log(1 / 0.07)],
                      "siglip": [math.log(10.0), -10.0], "align_uniform": []}[kind]
                # the C side sees float32 inputs: give torch exactly those values
                img = img.astype(np.float32).astype(np.float64)
                txt = txt.astype(np.float32).astype(np.float64)
                sc = [float(np.float32(v)) for v in sc]
                ti = torch.tensor(img, requires_grad=True)
                tt = torch.tensor(txt, requires_grad=True)
                ts = torch.tensor(sc if sc else [0.0], dtype=torch.float64, requires_grad=True)
                ref = torch_loss(kind, ti, tt, ts, one_sided, lam)
                ref.backward()
                loss, dimg, dtxt, dsc = c_loss(lib, kind, img, txt, sc, one_sided, lam, tile)
                pairs = [("loss", np.array([loss]), np.array([ref.item()])),
                         ("dI", dimg, ti.grad.numpy()), ("dT", dtxt, tt.grad.numpy())]
                if sc:
                    pairs.append(("dscalars", dsc, ts.grad.numpy()[: len(sc)]))
                for name, got, want in pairs:
                    err = np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-12)
                    worst = max(worst, err)
                    status = "ok" if err < 1e-4 else "MISMATCH"
                    print(f"{kind:14s} one_sided={one_sided} tile={tile:2d} {name:9s} "
                          f"max rel err {err:.2e} {status}")
                    if status != "ok":
                        print(f"  C {got.ravel()[:4]} vs torch {want.ravel()[:4]}")
                        return False
    print(f"cross-check passed (worst relative error {worst:.2e})")
    return True


def timing():
    torch.set_num_threads(2)
    print(f"\ntorch {torch.__version__} dense infonce forward+backward, float32, 2 threads")
    print(f"{'N':>6s} {'D':>4s} {'reps':>4s} {'s/step':>9s}")
    for n in (1024, 4096, 16384):
        for d in (64, 256):
            reps = 10 if n <= 1024 else 3 if n <= 4096 else 1
            img = F.normalize(torch.randn(n, d), dim=1).requires_grad_()
            txt = F.normalize(torch.randn(n, d), dim=1).requires_grad_()
            t = torch.tensor([math.log(1 / 0.07)], requires_grad=True)
            torch_loss("infonce", img, txt, t, 0, 1.0).backward()
            t0 = time.perf_counter()
            for _ in range(reps):
                torch_loss("infonce", img, txt, t, 0, 1.0).backward()
            print(f"{n:6d} {d:4d} {reps:4d} {(time.perf_counter() - t0) / reps:9.4f}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lib", default="build/libcliplab.so")
    ap.add_argument("--no-timing", action="store_true")
    args = ap.parse_args()
    lib = ctypes.CDLL(args.lib)
    ok = cross_check(lib)
    if ok and not args.no_timing:
        timing()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
