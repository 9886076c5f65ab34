#!/usr/bin/python3
"""Parity fixtures for gantl's ADA augmentation: writes tests/fixtures/ada.safetensors.

Run from the repository root:  /usr/bin/python3 tools/gen_ada_fixtures.py
Reference: tools/ada_ref.py (see its docstring for every convention); it reproduces the official
AugmentPipe bit for bit on CPU (tools/ada_crosscheck.py). Seeded, float32 unless stated.

Tensor names, for each image case <case>:
  <case>.x                 input images [B, C, H, W]
  <case>.p                 [1] augmentation probability p
  <case>.ops               [12] probability multipliers in ada_ref.OPS order (xflip, rotate90,
                           xint, scale, rotate, aniso, xfrac, brightness, contrast, lumaflip,
                           hue, saturation); 'bgc' = all ones, single-op cases have one 1
  <case>.draw.<step>.raw   value sample (uniform or normal), [B] or [B, 2] (xint, xfrac)
  <case>.draw.<step>.gate  gating uniform, [B]
  <case>.draw.<step>.mask  1.0 / 0.0 = gate < threshold, [B]
  <case>.draw.<step>.value op parameter after gating, shape of raw
                           <step> in xflip, rotate90, xint, scale, rotate_pre, aniso,
                           rotate_post, xfrac, brightness, contrast, lumaflip, hue, saturation
                           (official draw order: raw then gate for each step, steps in this
                           order, skipped steps draw nothing; see ada_ref.draw)
  <case>.G                 [B, 3, 3] inverse geometric matrix (pixel units, origin at centre)
  <case>.pad               [4] int32 reflect padding (x0, x1, y0, y1), one for the whole batch
  <case>.theta             [B, 2, 3] affine_grid theta for the padded, upsampled image
  <case>.yg                output of the geometric stage alone (only when both stages run)
  <case>.C                 [B, 4, 4] colour matrix (full 4x4 also for grey images)
  <case>.y                 augmented images [B, C, H, W]
  <case>.r                 random weights, shape of y
  <case>.gx                gradient of sum(y * r) w.r.t. x
  G, pad, theta are present iff the geometric stage runs (any geometric op enabled); C iff the
  colour stage runs (brightness, contrast or lumaflip enabled, or hue/saturation with RGB).

Second-order case "r1" (all of the above for its images, plus):
  r1.w1 [4, 3, 3, 3], r1.b1 [4], r1.w2 [4]: tiny D(y) = sum_{o,h,w} w2[o] *
      lrelu_0.2(conv2d(y, w1, padding=1) + b1[o]) (one score per sample, no gains)
  r1.gx_r1   [B, C, H, W] = d sum_b D(aug(x))_b / dx     (the R1 gradient, create_graph)
  r1.penalty [B] = sum over C, H, W of r1.gx_r1^2
  r1.g_w1, r1.g_b1, r1.g_w2 = gradient of sum_b penalty_b w.r.t. w1, b1, w2
      (b1 only acts through the lrelu slope, so r1.g_b1 is 0; stored for completeness)

Adaptive p case "ada_p" (float64):
  ada_p.params [4] = batch_size, ada_interval, ada_kimg, ada_target
  ada_p.signs  [T] mean sign(D(real)) seen at each adjustment
  ada_p.p      [T+1] p before the first and after each adjustment (ada_ref.ada_update),
  and "ada_p100.*" likewise with ada_kimg 100 (the transfer-learning value).

Filter: ada.sym6 [12] float64 taps; ada.hz_geom [12] float32 = sym6 / sum(sym6).
Metadata: "<case>" -> JSON {"p", "batch", "channels", "height", "width", "ops"}.
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ada_ref  # noqa: E402
import safetensors_io  # noqa: E402

OUT, META = {}, {}


def put(name, t, dtype=np.float32):
    OUT[name] = (t.detach().cpu().numpy() if torch.is_tensor(t) else np.asarray(t)).astype(dtype)


def image_case(case, x, p, ops, gen):
    b, nc, h, w = x.shape
    draws = ada_ref.draw(b, p, gen, nc, ops)
    put(f"{case}.x", x)
    put(f"{case}.p", [p])
    put(f"{case}.ops", draws["ops"])
    for k in ada_ref.STEPS:
        for part in ("raw", "gate", "mask", "value"):
            put(f"{case}.draw.{k}.{part}", draws[f"{k}.{part}"])
    g, c = ada_ref.matrices(draws, h, w)
    if g is not None:
        pad, theta, _ = ada_ref.geom_plan(g, h, w)
        put(f"{case}.G", g)
        put(f"{case}.pad", pad, np.int32)
        put(f"{case}.theta", theta)
        if c is not None:
            geom_only = dict(draws, ops=draws["ops"] * torch.tensor([1.0] * 7 + [0.0] * 5))
            put(f"{case}.yg", ada_ref.apply(x, geom_only))
    if c is not None:
        put(f"{case}.C", c)
    xr = x.clone().requires_grad_(True)
    y = ada_ref.apply(xr, draws)
    r = torch.randn(y.shape, generator=gen)
    gx, = torch.autograd.grad((y * r).sum(), xr)
    put(f"{case}.y", y)
    put(f"{case}.r", r)
    put(f"{case}.gx", gx)
    META[case] = json.dumps({"p": p, "batch": b, "channels": nc, "height": h, "width": w,
                             "ops": [k for k in ada_ref.OPS if ops.get(k, 0) > 0]})
    return draws


def tiny_d(y, w1, b1, w2):
    z = F.leaky_relu(F.conv2d(y, w1, padding=1) + b1.reshape(1, -1, 1, 1), 0.2)
    return (z * w2.reshape(1, -1, 1, 1)).sum(dim=(1, 2, 3))


def r1_loss(x, draws, w1, b1, w2, create_graph=True):
    xr = x.detach().requires_grad_(True)
    score = tiny_d(ada_ref.apply(xr, draws), w1, b1, w2)
    gx, = torch.autograd.grad(score.sum(), xr, create_graph=create_graph)
    pen = gx.square().sum(dim=(1, 2, 3))
    return gx, pen


def r1_case(gen):
    x = torch.randn([2, 3, 16, 16], generator=gen)
    draws = image_case("r1", x, 0.6, ada_ref.BGC, gen)
    w1 = torch.randn([4, 3, 3, 3], generator=gen) * 0.5
    b1 = torch.randn([4], generator=gen) * 0.1
    w2 = torch.randn([4], generator=gen)
    ws = [t.clone().requires_grad_(True) for t in (w1, b1, w2)]
    gx, pen = r1_loss(x, draws, *ws)
    grads = torch.autograd.grad(pen.sum(), ws)
    for n, t in zip(("w1", "b1", "w2"), (w1, b1, w2)):
        put(f"r1.{n}", t)
    put("r1.gx_r1", gx)
    put("r1.penalty", pen)
    for n, g in zip(("w1", "b1", "w2"), grads):
        put(f"r1.g_{n}", g)

    # Float64 check of the double backward against central finite differences.
    wd = [t.double().clone().requires_grad_(True) for t in (w1, b1, w2)]
    xd = x.double()
    _, pd = r1_loss(xd, draws, *wd)
    gd = torch.autograd.grad(pd.sum(), wd)
    worst, eps = 0.0, 1e-6
    for i in range(3):
        flat = wd[i].detach().flatten()
        for j in range(0, flat.numel(), max(1, flat.numel() // 12)):
            vals = []
            for s in (eps, -eps):
                ww = [t.detach().clone() for t in wd]
                ww[i].view(-1)[j] += s
                _, pp = r1_loss(xd, draws, *ww, create_graph=False)
                vals.append(pp.sum().item())
            fd = (vals[0] - vals[1]) / (2 * eps)
            worst = max(worst, abs(fd - gd[i].reshape(-1)[j].item()) / max(1.0, abs(fd)))
    err32 = max((a.double() - b).abs().max().item() for a, b in zip(grads, gd))
    print(f"r1: float64 autograd vs finite differences, max rel err {worst:.2e}; "
          f"float32 vs float64 weight grads max |diff| {err32:.2e}")
    assert worst < 1e-5


def ada_p_case(name, kimg):
    batch, interval, target = 32, 4, 0.6
    signs = [0.9, 0.75, 0.6, 0.2, -0.3, -1.0, 0.61, 1.0, 0.8, 0.59, 0.0, 0.7]
    p = [0.0] if kimg == 500 else [0.002]
    for s in signs:
        p.append(ada_ref.ada_update(p[-1], s, batch, target, interval, kimg))
    put(f"{name}.params", [batch, interval, kimg, target], np.float64)
    put(f"{name}.signs", signs, np.float64)
    put(f"{name}.p", p, np.float64)


def main():
    ada_ref.sym6_check()
    gen = torch.Generator().manual_seed(20220401)
    put("ada.sym6", ada_ref.SYM6, np.float64)
    put("ada.hz_geom", ada_ref.hz_geom())

    def rn(*shape):
        return torch.randn(list(shape), generator=gen)

    for p in (0.0, 0.3, 1.0):
        image_case(f"rgb16_p{p:g}", rn(4, 3, 16, 16), p, ada_ref.BGC, gen)
    for p in (0.3, 1.0):
        image_case(f"grey32_p{p:g}", rn(4, 1, 32, 32), p, ada_ref.BGC, gen)
    image_case("rgb12x20_p1", rn(4, 3, 12, 20), 1.0, ada_ref.BGC, gen)   # H 12, W 20
    for op in ada_ref.OPS:
        image_case(f"only_{op}", rn(4, 3, 16, 16), 1.0, {op: 1.0}, gen)
    r1_case(gen)
    ada_p_case("ada_p", 500)
    ada_p_case("ada_p100", 100)

    path = os.path.join("tests", "fixtures", "ada.safetensors")
    safetensors_io.save(path, OUT, META)
    print(f"wrote {path}: {len(OUT)} tensors, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
