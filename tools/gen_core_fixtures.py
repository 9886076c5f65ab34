#!/usr/bin/python3
"""Golden values for gantl's core ops from PyTorch: writes tests/fixtures/core.safetensors.

Run from the repository root:  /usr/bin/python3 tools/gen_core_fixtures.py
Needs Debian's python3-torch and python3-numpy. Everything is float32 and seeded.

Naming: "<case>.<what>". For an op case, inputs are "<case>.x", "<case>.w", ...; the output
"<case>.y"; "<case>.r" is a random weight and "<case>.g_<input>" the gradient of sum(y * r)
with respect to that input. upfirdn2d and bias_act follow the official StyleGAN2-ADA
reference semantics (zero insertion, padding/cropping, true convolution, down-sampling;
bias, activation, gain, clamp), written here from that specification.
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

torch.manual_seed(0)
OUT = {}


def put(name, t):
    OUT[name] = t.detach().cpu().numpy().astype(np.float32) if torch.is_tensor(t) else np.asarray(t, np.float32)


def op_case(case, fn, **inputs):
    """Evaluates fn(**inputs), stores inputs, y, r and the gradients of sum(y * r)."""
    leaves = {k: v.clone().requires_grad_(True) for k, v in inputs.items()}
    y = fn(**leaves)
    r = torch.randn_like(y)
    grads = torch.autograd.grad((y * r).sum(), list(leaves.values()), allow_unused=True)
    for k, v in inputs.items():
        put(f"{case}.{k}", v)
    put(f"{case}.y", y)
    put(f"{case}.r", r)
    for k, g in zip(leaves, grads):
        put(f"{case}.g_{k}", torch.zeros_like(inputs[k]) if g is None else g)


def upfirdn2d(x, f, up=1, down=1, pad=(0, 0, 0, 0), flip_filter=False, gain=1.0):
    """Reference upfirdn2d: f is 2-D (fh, fw); pad = (x0, x1, y0, y1); negative pads crop."""
    n, c, h, w = x.shape
    x = x.reshape(n, c, h, 1, w, 1)
    x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])  # zero insertion
    x = x.reshape(n, c, h * up, w * up)
    x = F.pad(x, [max(pad[0], 0), max(pad[1], 0), max(pad[2], 0), max(pad[3], 0)])
    x = x[:, :, max(-pad[2], 0):x.shape[2] - max(-pad[3], 0), max(-pad[0], 0):x.shape[3] - max(-pad[1], 0)]
    f = f * gain
    if not flip_filter:
        f = f.flip([0, 1])
    x = F.conv2d(x, f[None, None].repeat(c, 1, 1, 1), groups=c)
    return x[:, :, ::down, ::down]


def bias_act(x, b, act="lrelu", alpha=0.2, gain=math.sqrt(2), clamp=None):
    x = x + b.reshape(1, -1, *([1] * (x.ndim - 2)))
    if act == "lrelu":
        x = F.leaky_relu(x, alpha)
    x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


def main():
    rn = torch.randn
    # convolutions
    op_case("conv2d_s2g2", lambda x, w: F.conv2d(x, w, stride=2, padding=1, groups=2),
            x=rn(2, 4, 7, 6), w=rn(6, 2, 3, 3))
    op_case("conv2d_5x5", lambda x, w: F.conv2d(x, w, padding=2), x=rn(2, 3, 6, 5), w=rn(4, 3, 5, 5))
    op_case("conv2d_1x1", lambda x, w: F.conv2d(x, w), x=rn(3, 5, 4, 4), w=rn(7, 5, 1, 1))
    op_case("convt_s2g2", lambda x, w: F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1, groups=2),
            x=rn(2, 4, 5, 4), w=rn(4, 3, 3, 3))
    op_case("convt_s2p0", lambda x, w: F.conv_transpose2d(x, w, stride=2), x=rn(2, 3, 4, 4), w=rn(3, 5, 3, 3))
    # upfirdn2d: StyleGAN2's upsample2d / downsample2d and a general crop + flip case
    k = torch.tensor([1.0, 3.0, 3.0, 1.0])
    f = torch.outer(k, k) / torch.outer(k, k).sum()
    put("fir.f", f)
    op_case("upfirdn_up2", lambda x: upfirdn2d(x, f, up=2, pad=(2, 1, 2, 1), gain=4.0), x=rn(2, 3, 5, 6))
    op_case("upfirdn_down2", lambda x: upfirdn2d(x, f, down=2, pad=(1, 1, 1, 1)), x=rn(2, 3, 8, 6))
    g = torch.rand(4, 3)
    put("fir.g", g)
    op_case("upfirdn_crop", lambda x: upfirdn2d(x, g, pad=(-1, 2, 0, -1), flip_filter=True, gain=1.5), x=rn(2, 2, 6, 7))
    # bias_act with a clamp that bites
    op_case("bias_act_lrelu", lambda x, b: bias_act(x, b, clamp=0.8), x=rn(3, 5, 4, 4), b=rn(5) * 0.3)
    op_case("bias_act_linear", lambda x, b: bias_act(x, b, act="linear", gain=0.5, clamp=0.6), x=rn(4, 6), b=rn(6))
    # matmul
    op_case("matmul_batched", lambda a, b: a @ b, a=rn(2, 3, 4, 5), b=rn(2, 3, 5, 6))
    op_case("matmul_tt", lambda a, b: a.transpose(-1, -2) @ b.transpose(-1, -2), a=rn(3, 5, 4), b=rn(6, 5))
    op_case("linear", lambda x, w, b: F.linear(x, w, b), x=rn(7, 9), w=rn(4, 9), b=rn(4))
    # elementwise
    op_case("softplus", F.softplus, x=rn(5, 6) * 5)
    op_case("sigmoid", torch.sigmoid, x=rn(5, 6) * 3)
    op_case("exp", torch.exp, x=rn(5, 6))
    op_case("log", torch.log, x=torch.rand(5, 6) + 0.1)
    op_case("sqrt", torch.sqrt, x=torch.rand(5, 6) + 0.1)
    op_case("rsqrt", torch.rsqrt, x=torch.rand(5, 6) + 0.1)
    op_case("pow", lambda x: x ** 1.7, x=torch.rand(5, 6) + 0.1)
    op_case("lrelu", lambda x: F.leaky_relu(x, 0.2), x=rn(5, 6))
    op_case("div_bcast", lambda a, b: a / b, a=rn(2, 3, 4), b=torch.rand(3, 1) + 0.5)
    # reductions and shapes
    op_case("sum_02", lambda x: x.sum(dim=(0, 2)), x=rn(3, 4, 5, 2))
    op_case("mean_13k", lambda x: x.mean(dim=(1, 3), keepdim=True), x=rn(3, 4, 5, 2))
    op_case("permute", lambda x: x.permute(2, 0, 3, 1), x=rn(2, 3, 4, 5))
    op_case("repeat", lambda x: x.repeat(2, 1, 3, 2), x=rn(3, 2, 1, 2))
    op_case("concat", lambda a, b: torch.cat([a, b], dim=1), a=rn(2, 3, 4), b=rn(2, 2, 4))
    op_case("slice", lambda x: x[:, 1:4], x=rn(3, 5, 2))
    # batch norm: two training steps update the running statistics, then eval
    x1, x2, x3 = rn(8, 5) * 2 + 1, rn(8, 5), rn(4, 5)
    bn = torch.nn.BatchNorm1d(5)
    with torch.no_grad():
        bn.weight.copy_(torch.rand(5) + 0.5)
        bn.bias.copy_(rn(5))
    put("bn.weight", bn.weight)
    put("bn.bias", bn.bias)
    op_case("bn_train1", lambda x: bn(x), x=x1)
    op_case("bn_train2", lambda x: bn(x), x=x2)
    put("bn.running_mean", bn.running_mean)
    put("bn.running_var", bn.running_var)
    bn.eval()
    op_case("bn_eval", lambda x: bn(x), x=x3)
    x4 = rn(3, 4, 3, 3)
    bn2 = torch.nn.BatchNorm2d(4)
    op_case("bn2d_train", lambda x: bn2(x), x=x4)
    put("bn2d.running_mean", bn2.running_mean)
    put("bn2d.running_var", bn2.running_var)
    # optimisers: five steps from given gradients
    p0 = rn(10)
    grads = rn(5, 10)
    put("adam.p0", p0)
    put("adam.grads", grads)
    for name, make in [("adam", lambda p: torch.optim.Adam([p], lr=0.01, betas=(0.0, 0.99), eps=1e-8)),
                       ("adam2", lambda p: torch.optim.Adam([p], lr=0.002, betas=(0.5, 0.999), eps=1e-8)),
                       ("sgd", lambda p: torch.optim.SGD([p], lr=0.1, momentum=0.9))]:
        p = torch.nn.Parameter(p0.clone())
        opt = make(p)
        for t in range(5):
            p.grad = grads[t].clone()
            opt.step()
        put(f"{name}.p5", p)
    # R1-style gradient of a gradient through a small discriminator:
    # D(x) = sum(fc(down(bias_act(conv(x))))), pen = sum((dD/dx)^2), grads of pen w.r.t. weights.
    x = rn(2, 3, 8, 8).requires_grad_(True)
    w1, b1 = (rn(4, 3, 3, 3) * 0.5).requires_grad_(True), (rn(4) * 0.1).requires_grad_(True)
    w2, b2 = (rn(5, 4, 3, 3) * 0.3).requires_grad_(True), (rn(5) * 0.1).requires_grad_(True)
    wf = (rn(1, 5 * 4 * 4) * 0.2).requires_grad_(True)
    for n_, t_ in [("x", x), ("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2), ("wf", wf)]:
        put(f"r1.{n_}", t_)

    def disc(x):
        h = bias_act(F.conv2d(x, w1, padding=1), b1, clamp=256.0)
        h = upfirdn2d(h, f, down=2, pad=(1, 1, 1, 1))
        h = bias_act(F.conv2d(h, w2, padding=1), b2, gain=1.0)
        return F.linear(h.reshape(h.shape[0], -1), wf)

    logits = disc(x)
    (gx,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    pen = gx.square().sum()
    gw = torch.autograd.grad(pen, [w1, b1, w2, b2, wf])
    put("r1.logits", logits)
    put("r1.gx", gx)
    put("r1.pen", pen.reshape(1))
    for n_, g_ in zip(["w1", "b1", "w2", "b2", "wf"], gw):
        put(f"r1.g_{n_}", g_)
    # Path-length-style: gradient w.r.t. styles through a modulated, demodulated convolution,
    # then the gradient of its norm w.r.t. the weight.
    xin = rn(2, 4, 6, 6)
    s = (rn(2, 4) + 1).requires_grad_(True)
    w = rn(3, 4, 3, 3).requires_grad_(True)
    put("pl.x", xin)
    put("pl.s", s)
    put("pl.w", w)

    def modconv(s):
        d = torch.rsqrt((w[None] * s[:, None, :, None, None]).square().sum(dim=(2, 3, 4)) + 1e-8)  # (N, O)
        y = F.conv2d(xin * s[:, :, None, None], w, padding=1)
        return y * d[:, :, None, None]

    y = modconv(s)
    noise = rn(*y.shape) / math.sqrt(36)
    put("pl.noise", noise)
    (gs,) = torch.autograd.grad((y * noise).sum(), s, create_graph=True)
    plen = gs.square().sum(1).mean().sqrt()
    (gw,) = torch.autograd.grad(plen, w)
    put("pl.y", y)
    put("pl.gs", gs)
    put("pl.len", plen.reshape(1))
    put("pl.g_w", gw)

    out = os.path.join("tests", "fixtures", "core.safetensors")
    safetensors_io.save(out, OUT, {"generator": "tools/gen_core_fixtures.py", "torch": torch.__version__})
    print(f"wrote {out}: {len(OUT)} tensors, {os.path.getsize(out)} bytes")


if __name__ == "__main__":
    main()
