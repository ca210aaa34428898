#!/usr/bin/python3
"""torch_train_ref.py - the models of bench_train.c in PyTorch, timed the same way.

Reads the rows of build/bench/train.tsv (written by bench_train: one row per objective and batch
size, with the model's dimensions), builds the same model in PyTorch (Debian's python3-torch)
and times full training steps on random inputs of the same shapes:
  image tower   conv3x3 pad 1 + ReLU, stride 2 at the first conv of every stage after the first,
                global average pool; images and conv weights channels_last (NHWC in memory, as
                cliplab), which oneDNN runs faster here than NCHW in interleaved A/B runs (--nchw)
  contrastive   linear heads without bias on both sides, L2 norm, symmetric InfoNCE with a
                learnable log logit scale (init log(1/0.07), scale clamped at 100)
    cbow text   masked mean of word embeddings over each caption's length + linear (bias)
    transformer GPT-2 pre-LN causal blocks (qkv, proj, 4x MLP with tanh GELU), learned positions,
                final LN, the feature at each caption's last token
  bow           linear (bias) to the vocabulary, cross-entropy against soft targets (K words, 1/K)
  caption       linear (bias) to P prefix vectors, the same transformer over [prefix, caption],
                LM head without bias, next-token CE with padding ignored
A step is zero_grad, forward, backward, clip_grad_norm_ (1.0), AdamW (biases, gains
and the logit scale exempt from decay, as in cliplab). Data loading is excluded: the
inputs are made once per configuration, so compare with cliplab's step time without its data time
(img_s_nodata in train.tsv).
Measured like bench_train: 2 warm-up steps, then enough steps for ~2.5 s (3..20), the best step
time; a 2048^3 torch.mm peak (best of 3) just before and just after each configuration, the
better one kept (the machine is shared: the step's fraction of a peak measured next to it is the
load-robust number); peak RSS per configuration is VmHWM after resetting it through
/proc/self/clear_refs.

Every row is measured twice, interleaved: in this process as shipped (default), and in a child
process of this script started with the tuned environment (Debian's OpenMP OpenBLAS on
LD_LIBRARY_PATH, MALLOC_MMAP_MAX_=0, MALLOC_TRIM_THRESHOLD_=64 GiB), which is what PyTorch at its
best here needs. Each row runs at the thread count of its cliplab row (torch.set_num_threads).
Prints a TSV on stdout (lines starting with '#' are comments); ms_step .. loss are those of the
better configuration, named in `best`:
  label B threads steps ms_step img_s mm_peak_gflops hwm_mib loss img_s_default img_s_tuned
  mm_peak_default mm_peak_tuned best
Usage: tests/bench/torch_train_ref.py [--tsv build/bench/train.tsv] [--nchw] [--no-tuned]
Deliberately left out: torch.compile / TorchScript (not in Debian's torch 1.13 as a fast path on
CPU), mixed precision, data loading.
"""
import argparse
import ctypes
import math
import os
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

WARMUP_STEPS = 2
MIN_STEPS, MAX_STEPS = 3, 20
STEP_BUDGET_S = 2.5
PEAK_N, PEAK_REPS = 2048, 3
# The tuned configuration (issue 15): Debian's OpenMP OpenBLAS instead of the pthread one torch
# links, and glibc's allocator kept from handing memory back (no mmap per large tensor, no trim).
TUNED_BLAS_DIR = "/usr/lib/x86_64-linux-gnu/openblas-openmp"
TUNED_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "68719476736"}


class ImageTower(nn.Module):
    def __init__(self, widths, convs_per_stage, stages):
        super().__init__()
        layers, c = [], 3
        for s in range(stages):
            for j in range(convs_per_stage):
                stride = 2 if s > 0 and j == 0 else 1
                layers += [nn.Conv2d(c, widths[s], 3, stride, 1), nn.ReLU(inplace=True)]
                c = widths[s]
        self.net = nn.Sequential(*layers)
        self.dim = c

    def forward(self, x):
        return self.net(x).mean((2, 3))


class Block(nn.Module):
    def __init__(self, C, heads):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(C), nn.LayerNorm(C)
        self.qkv, self.proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        self.fc, self.fcproj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

    def forward(self, x, mask):
        B, S, C = x.shape
        hs = C // self.heads
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        q, k, v = (t.view(B, S, self.heads, hs).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))
        att = att.masked_fill(mask, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, S, C)
        x = x + self.proj(y)
        return x + self.fcproj(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class Transformer(nn.Module):
    """Causal pre-LN transformer over [prefix (P vectors), tokens (T)]: hidden states [B, P+T, C]."""

    def __init__(self, V, T, C, layers, heads, P=0):
        super().__init__()
        self.P = P
        self.wte = nn.Embedding(V, C)
        self.wpe = nn.Parameter(torch.randn(P + T, C) * 0.02)
        self.blocks = nn.ModuleList(Block(C, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(C)
        S = P + T
        self.register_buffer("mask", torch.ones(S, S, dtype=torch.bool).triu(1))

    def forward(self, tokens, prefix=None):
        x = self.wte(tokens)
        if prefix is not None:
            x = torch.cat([prefix, x], 1)
        x = x + self.wpe
        for b in self.blocks:
            x = b(x, self.mask)
        return self.ln_f(x)


class Contrastive(nn.Module):
    def __init__(self, r, tower):
        super().__init__()
        C, D, V, T = r["C"], r["D"], r["V"], r["T"]
        self.img = tower
        self.img_head = nn.Linear(tower.dim, D, bias=False)
        self.cbow = r["text"] == "cbow"
        if self.cbow:
            self.wte = nn.Embedding(V, C)
            self.txt_proj = nn.Linear(C, C)
        else:
            self.txt = Transformer(V, T, C, r["layers"], r["heads"])
        self.txt_head = nn.Linear(C, D, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def forward(self, batch):
        images, tokens, lengths = batch["images"], batch["tokens"], batch["lengths"]
        img = F.normalize(self.img_head(self.img(images)), dim=1)
        if self.cbow:
            mask = batch["mask"].unsqueeze(2)
            feat = self.txt_proj((self.wte(tokens) * mask).sum(1) / lengths.unsqueeze(1))
        else:
            h = self.txt(tokens)
            feat = h[torch.arange(h.shape[0]), lengths.long() - 1]
        txt = F.normalize(self.txt_head(feat), dim=1)
        logits = self.logit_scale.exp().clamp(max=100.0) * img @ txt.T
        labels = torch.arange(logits.shape[0])
        return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))


class Bow(nn.Module):
    def __init__(self, r, tower):
        super().__init__()
        self.img = tower
        self.cls = nn.Linear(tower.dim, r["V"])

    def forward(self, batch):
        logp = F.log_softmax(self.cls(self.img(batch["images"])), dim=1)
        return -(batch["bow"] * logp).sum(1).mean()


class Caption(nn.Module):
    def __init__(self, r, tower):
        super().__init__()
        self.P, self.C = r["P"], r["C"]
        self.img = tower
        self.prefix = nn.Linear(tower.dim, self.P * self.C)
        self.dec = Transformer(r["V"], r["T"], self.C, r["layers"], r["heads"], self.P)
        self.lm = nn.Linear(self.C, r["V"], bias=False)

    def forward(self, batch):
        tokens = batch["tokens"]
        B, T = tokens.shape
        prefix = self.prefix(self.img(batch["images"])).view(B, self.P, self.C)
        hid = self.dec(tokens, prefix)[:, self.P:self.P + T - 1]
        logits = self.lm(hid)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["targets"].reshape(-1), ignore_index=-1)


def make_batch(r, channels_last, gen):
    """Random inputs of the shapes cliplab's batch has: images, tokens with lengths 3..T."""
    B, R, T, V = r["B"], r["R"], r["T"], r["V"]
    images = torch.randn(B, 3, R, R, generator=gen)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    lengths = torch.randint(3, T + 1, (B,), generator=gen)
    pos = torch.arange(T).unsqueeze(0)
    mask = pos < lengths.unsqueeze(1)
    tokens = torch.randint(0, V, (B, T), generator=gen) * mask
    targets = torch.where(pos[:, 1:] + 1 < lengths.unsqueeze(1), tokens[:, 1:], torch.full_like(tokens[:, 1:], -1))
    k = torch.randint(2, 6, (B,), generator=gen)
    bow = torch.zeros(B, V)
    for b in range(B):
        words = torch.randperm(V, generator=gen)[: int(k[b])]
        bow[b, words] = 1.0 / float(k[b])
    return {"images": images, "tokens": tokens, "lengths": lengths.float(), "mask": mask.float(),
            "targets": targets, "bow": bow}


def build(r, channels_last):
    widths = [int(w) for w in r["widths"].split(",")]
    tower = ImageTower(widths, r["convs_per_stage"], r["stages"])
    model = {"contrastive": Contrastive, "bow": Bow, "caption": Caption}[r["objective"]](r, tower)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def optimizer(model):
    """AdamW as experiments/contrastive.yaml: lr 2e-3, betas (0.9, 0.98), eps 1e-6, weight decay 0.1
    on matrices (weights, embeddings, positions) and none on biases, gains and the logit scale."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                             lr=2e-3, betas=(0.9, 0.98), eps=1e-6)


def vm_kb(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1])
    return -1


def reset_hwm():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def mm_peak():
    """Best GFLOP/s of PEAK_REPS square float32 products after one warm-up, as bench_train's sgemm."""
    a, b = torch.rand(PEAK_N, PEAK_N) * 2 - 1, torch.rand(PEAK_N, PEAK_N) * 2 - 1
    best = float("inf")
    for i in range(PEAK_REPS + 1):
        t0 = time.perf_counter()
        torch.mm(a, b)
        dt = time.perf_counter() - t0
        if i > 0:
            best = min(best, dt)
    return 2.0 * PEAK_N ** 3 / best * 1e-9


def bench(r, channels_last):
    peak = mm_peak()
    torch.manual_seed(1)
    gen = torch.Generator().manual_seed(2)
    reset_hwm()
    model = build(r, channels_last)
    opt = optimizer(model)
    batch = make_batch(r, channels_last, gen)
    params = list(model.parameters())

    def step():
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = model(batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return time.perf_counter() - t0, float(loss)

    for _ in range(WARMUP_STEPS):
        dt, loss = step()
    n = min(MAX_STEPS, max(MIN_STEPS, math.ceil(STEP_BUDGET_S / dt)))
    best = float("inf")
    for _ in range(n):
        dt, loss = step()
        best = min(best, dt)
    hwm = vm_kb("VmHWM:") / 1024.0
    return n, best, max(peak, mm_peak()), hwm, loss


def read_tsv(path):
    with open(path) as f:
        lines = [l.rstrip("\n").split("\t") for l in f if l.strip()]
    head, rows = lines[0], []
    for cells in lines[1:]:
        r = dict(zip(head, cells))
        for k in ("B", "threads", "R", "convs_per_stage", "stages", "T", "C", "layers", "heads", "D", "V", "P"):
            r[k] = int(r[k])
        rows.append(r)
    return rows


def set_blas_threads(n):
    """torch.set_num_threads does not reach OpenBLAS's pthread build, which would otherwise use every
    core on a 1-thread row; the loaded libopenblas (either build) is told directly."""
    try:
        ctypes.CDLL("libopenblas.so.0").openblas_set_num_threads(n)
    except (OSError, AttributeError):
        print("# could not set OpenBLAS's thread count: the 1-thread rows may use more cores", file=sys.stderr)


def bench_row(r, channels_last):
    """One configuration at its own thread count: (steps, best s, peak GFLOP/s, HWM MiB, loss)."""
    torch.set_num_threads(r["threads"])
    set_blas_threads(r["threads"])
    return bench(r, channels_last)


def serve(rows, channels_last):
    """--serve: the tuned side. Reads a row index per stdin line, benches that row and answers one
    line "steps best peak hwm loss", so the parent interleaves default and tuned row by row."""
    for line in sys.stdin:
        n, best, peak, hwm, loss = bench_row(rows[int(line)], channels_last)
        print(f"{n}\t{best}\t{peak}\t{hwm}\t{loss}", flush=True)
    return 0


def start_tuned(args):
    """This script again, under the tuned environment, as a --serve child (None if it cannot start)."""
    env = dict(os.environ, **TUNED_ENV)
    env["LD_LIBRARY_PATH"] = TUNED_BLAS_DIR + (":" + os.environ["LD_LIBRARY_PATH"] if "LD_LIBRARY_PATH" in os.environ else "")
    cmd = [sys.executable, os.path.abspath(__file__), "--tsv", args.tsv, "--serve"] + (["--nchw"] if args.nchw else [])
    if not os.path.isdir(TUNED_BLAS_DIR):
        print(f"# tuned configuration skipped: {TUNED_BLAS_DIR} missing (Debian's libopenblas0-openmp)")
        return None
    return subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)


def ask_tuned(child, i):
    child.stdin.write(f"{i}\n")
    child.stdin.flush()
    line = child.stdout.readline()
    if not line:
        raise RuntimeError("tuned child exited")
    n, best, peak, hwm, loss = line.split("\t")
    return int(n), float(best), float(peak), float(hwm), float(loss)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tsv", default="build/bench/train.tsv")
    ap.add_argument("--nchw", action="store_true", help="NCHW images and weights instead of channels_last")
    ap.add_argument("--no-tuned", action="store_true", help="only the default configuration")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    rows = [r for r in read_tsv(args.tsv) if r["head"] == "linear"]
    channels_last = not args.nchw
    if args.serve:
        return serve(rows, channels_last)
    print(f"# torch {torch.__version__}, {'channels_last' if channels_last else 'NCHW'}, rows of {args.tsv}; "
          f"default: this process; tuned: a child with {' '.join(f'{k}={v}' for k, v in TUNED_ENV.items())} "
          f"LD_LIBRARY_PATH={TUNED_BLAS_DIR}")
    child = None if args.no_tuned else start_tuned(args)
    print("label\tB\tthreads\tsteps\tms_step\timg_s\tmm_peak_gflops\thwm_mib\tloss\t"
          "img_s_default\timg_s_tuned\tmm_peak_default\tmm_peak_tuned\tbest")
    for i, r in enumerate(rows):
        res = {"default": bench_row(r, channels_last)}
        if child:
            res["tuned"] = ask_tuned(child, i)
        name = max(res, key=lambda k: r["B"] / res[k][1])
        n, best, peak, hwm, loss = res[name]
        img = {k: r["B"] / v[1] for k, v in res.items()}
        print(f"{r['label']}\t{r['B']}\t{r['threads']}\t{n}\t{best * 1e3:.3f}\t{r['B'] / best:.1f}\t"
              f"{peak:.2f}\t{hwm:.1f}\t{loss:.4f}\t{img['default']:.1f}\t{img.get('tuned', float('nan')):.1f}\t"
              f"{res['default'][2]:.2f}\t{res['tuned'][2] if child else float('nan'):.2f}\t{name}", flush=True)
    if child:
        child.stdin.close()
        child.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
