#!/usr/bin/python3
"""PyTorch peer for AutoQ's QAT training-throughput benchmark.

Measures training throughput (images/s) of the small depthwise-separable CNN
(SmallDSCNN, defined once in tests/fixtures/gen_models.py) on CPU for
  float  - the float nn.Module (eager)
  qat    - PyTorch's own QAT: torch.ao.quantization.quantize_fx.prepare_qat_fx
           (conv+BN+ReLU fused into QAT modules, fake-quant on weights and
           activations)
  script - torch.jit.script of the float model (optional)
One training step = forward + cross-entropy + backward + SGD(momentum) step,
model in train mode.  All variants start from the same initial weights and see
the same batches.  Warmup steps are excluded from the timing; with
--repeats R the variants take turns over R timed windows of --steps steps
and images_per_s is the median window.

Usage:
  /usr/bin/python3 bench/pytorch_peer.py --threads 2 --batch 128 --steps 30 \
      --warmup 5 --data fashion-mnist --out results.json
  /usr/bin/python3 bench/pytorch_peer.py --save-model small_dscnn.pt --save-only

Needs Debian's python3-torch (1.13); for --data fashion-mnist the
dataset-fashion-mnist package (/usr/share/datasets/fashion-mnist).
"""

import argparse
import copy
import gzip
import json
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "fixtures"))
from gen_models import SMALL_DSCNN_SEED, build_small_dscnn  # noqa: E402

FASHION_DIR = "/usr/share/datasets/fashion-mnist"
VARIANTS = ("float", "qat", "script")
DATA_SEED = 1234


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------

def _read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic = int.from_bytes(raw[0:4], "big")
    ndim = magic & 0xFF
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def make_batches(kind, batch, count):
    """`count` (images [B,1,28,28] float32 in [0,1], labels [B] int64) pairs."""
    g = torch.Generator().manual_seed(DATA_SEED)
    if kind == "random":
        return [(torch.rand(batch, 1, 28, 28, generator=g),
                 torch.randint(0, 10, (batch,), generator=g)) for _ in range(count)]
    images = _read_idx(os.path.join(FASHION_DIR, "train-images-idx3-ubyte.gz"))
    labels_path = os.path.join(FASHION_DIR, "train-labels-idx1-ubyte.gz")
    if os.path.exists(labels_path):
        labels = torch.from_numpy(_read_idx(labels_path).astype(np.int64))
    else:
        labels = torch.randint(0, 10, (images.shape[0],), generator=g)
    images = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    n = images.shape[0]
    if batch > n:
        raise SystemExit("batch %d larger than the data set (%d images)" % (batch, n))
    out = []
    per_epoch = n // batch
    for i in range(count):
        s = (i % per_epoch) * batch
        out.append((images[s:s + batch].contiguous(), labels[s:s + batch].contiguous()))
    return out


# --------------------------------------------------------------------------
# QAT configuration
# --------------------------------------------------------------------------

def qat_qconfig_mapping(kind):
    """QConfigMapping for prepare_qat_fx.

    'explicit' (default): per-channel symmetric int8 weights [-128,127] and
      per-tensor affine uint8 activations over the full [0,255] range; the same
      fused observer+fake-quant modules as PyTorch's default QAT qconfig.
      Built from get_default_qat_qconfig_mapping('fbgemm') with every entry
      that used its default qconfig replaced (fixed-qparams ops such as
      sigmoid keep their special qconfigs).
    'fbgemm-default': get_default_qat_qconfig_mapping('fbgemm') unchanged; in
      torch 1.13 its weights are per-channel symmetric int8 but activations use
      reduce_range=True, i.e. quant_max 127 (7-bit).
    """
    from torch.ao.quantization import QConfig, get_default_qat_qconfig_mapping
    from torch.ao.quantization.fake_quantize import (
        FusedMovingAvgObsFakeQuantize, default_fused_per_channel_wt_fake_quant)
    from torch.ao.quantization.observer import MovingAverageMinMaxObserver

    mapping = get_default_qat_qconfig_mapping("fbgemm")
    if kind == "fbgemm-default":
        return mapping, mapping.global_qconfig
    ours = QConfig(
        activation=FusedMovingAvgObsFakeQuantize.with_args(
            observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255,
            dtype=torch.quint8, qscheme=torch.per_tensor_affine, reduce_range=False),
        weight=default_fused_per_channel_wt_fake_quant)
    default = mapping.global_qconfig
    mapping.set_global(ours)
    for obj, qc in list(mapping.object_type_qconfigs.items()):
        if qc is default:
            mapping.set_object_type(obj, ours)
    return mapping, ours


def describe_qconfig(qconfig):
    def fq(ctor):
        m = ctor()
        obs = getattr(m, "activation_post_process", None)
        return {
            "fake_quant": type(m).__name__,
            "observer": type(obs).__name__ if obs is not None else None,
            "dtype": str(m.dtype),
            "qscheme": str(m.qscheme),
            "quant_min": int(m.quant_min),
            "quant_max": int(m.quant_max),
        }
    return {"weight": fq(qconfig.weight), "activation": fq(qconfig.activation)}


# --------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------

def build_variant(name, base, qconfig_kind, example):
    model = copy.deepcopy(base)
    model.train()
    if name == "float":
        return model
    if name == "script":
        return torch.jit.script(model)
    if name == "qat":
        from torch.ao.quantization.quantize_fx import prepare_qat_fx
        mapping, _ = qat_qconfig_mapping(qconfig_kind)
        qat = prepare_qat_fx(model, mapping, example_inputs=(example,))
        qat.train()
        return qat
    raise ValueError(name)


class Trainer:
    """One variant's model + optimizer; runs and times training steps."""

    def __init__(self, model, lr, momentum):
        self.model = model
        self.opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
        self.loss_fn = nn.CrossEntropyLoss()
        self.loss = float("nan")

    def step(self, x, y):
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.model(x), y)
        loss.backward()
        self.opt.step()
        return loss

    def run(self, batches):
        """Trains on `batches`; returns the elapsed seconds (time.perf_counter)."""
        t0 = time.perf_counter()
        for x, y in batches:
            loss = self.step(x, y)
        dt = time.perf_counter() - t0
        self.loss = float(loss)
        return dt


def save_scripted(path):
    model = build_small_dscnn()
    model.eval()
    ts = torch.jit.script(model)
    d = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(d, ".%s.%d.tmp" % (os.path.basename(path), os.getpid()))
    torch.jit.save(ts, tmp)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=30, help="timed steps per variant")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps per variant")
    ap.add_argument("--repeats", type=int, default=1,
                    help="timed windows of --steps steps per variant; images_per_s is "
                         "their median (default 1)")
    ap.add_argument("--data", choices=("fashion-mnist", "random"), default="random")
    ap.add_argument("--variants", default="float,qat,script",
                    help="comma-separated subset of %s" % ",".join(VARIANTS))
    ap.add_argument("--qconfig", choices=("explicit", "fbgemm-default"), default="explicit",
                    help="QAT qconfig (see qat_qconfig_mapping); default: explicit 8-bit")
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--out", help="write the result JSON here")
    ap.add_argument("--save-model", metavar="PATH",
                    help="also save the float model (initial weights, eval mode) scripted")
    ap.add_argument("--save-only", action="store_true", help="with --save-model: save and exit")
    ap.add_argument("--memory-format", choices=("contiguous", "channels-last"), default="contiguous",
                    help="layout of inputs and 4-d weights; channels-last lets oneDNN skip reorders")
    args = ap.parse_args()

    variants = [v for v in args.variants.split(",") if v]
    for v in variants:
        if v not in VARIANTS:
            ap.error("unknown variant %r" % v)
    if min(args.threads, args.batch, args.steps, args.repeats) < 1 or args.warmup < 0:
        ap.error("--threads/--batch/--steps/--repeats must be >= 1, --warmup >= 0")

    torch.set_num_threads(args.threads)
    if args.save_model:
        save_scripted(args.save_model)
        if args.save_only:
            return 0
    elif args.save_only:
        ap.error("--save-only needs --save-model")

    batches = make_batches(args.data, args.batch, args.warmup + args.repeats * args.steps)
    base = build_small_dscnn()
    if args.memory_format == "channels-last":
        base = base.to(memory_format=torch.channels_last)
        batches = [(x.contiguous(memory_format=torch.channels_last), y) for x, y in batches]
    _, qconfig = qat_qconfig_mapping(args.qconfig)

    # Warmup (untimed), then `repeats` timed windows of `steps` steps each;
    # the variants take turns window by window so that a disturbance on the
    # machine does not hit one variant only.
    trainers = {}
    for v in variants:
        trainers[v] = Trainer(build_variant(v, base, args.qconfig, batches[0][0]),
                              args.lr, args.momentum)
        for x, y in batches[:args.warmup]:
            trainers[v].step(x, y)
    samples = {v: [] for v in variants}
    for r in range(args.repeats):
        s0 = args.warmup + r * args.steps
        window = batches[s0:s0 + args.steps]
        for v in variants:
            dt = trainers[v].run(window)
            samples[v].append(args.steps * args.batch / dt)

    out = {
        "benchmark": "small_dscnn_train_throughput",
        "images_per_s": {v: round(statistics.median(x), 1) for v, x in samples.items()},
        "images_per_s_samples": {v: [round(i, 1) for i in x] for v, x in samples.items()},
        "final_loss": {v: round(t.loss, 4) for v, t in trainers.items()},
        "threads": args.threads,
        "batch": args.batch,
        "steps": args.steps,
        "warmup": args.warmup,
        "repeats": args.repeats,
        "data": args.data,
        "memory_format": args.memory_format,
        "optimizer": {"type": "SGD", "lr": args.lr, "momentum": args.momentum},
        "model_seed": SMALL_DSCNN_SEED,
        "qconfig_kind": args.qconfig,
        "qconfig": describe_qconfig(qconfig),
        "torch_version": torch.__version__,
        "machine": platform.machine(),
    }
    line = json.dumps(out, sort_keys=True)
    print(line)
    if args.out:
        with open(args.out, "w") as f:
            f.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
