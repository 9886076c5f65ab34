#!/usr/bin/env python3
"""Reference for the 2-D experiment's networks and training loop (gantl toy2d), in PyTorch.

Writes tests/fixtures/toy2d_replay.safetensors: PyTorch-initialised G and D (the paper's MLPs),
recorded batches for a few iterations of the authors' loop (a D step every iteration, a G step
every fourth, Adam 2e-4 / (0.5, 0.999)), and what PyTorch gets: the weights and BatchNorm
buffers after the loop, each iteration's losses, and the grad-D similarity of the trained D at
given points. `gantl toy2d --replay` runs the same iterations; tests/test_toy2d.c compares.

usage: /usr/bin/python3 tools/toy2d_ref.py [OUT]
"""
import os
import sys

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

ITERS = 9          # D steps; G steps at iterations 0, 4, 8
BATCH, Z = 64, 64


def make_g():
    dims = [Z, 64, 128, 128, 128, 64]
    layers = []
    for a, b in zip(dims[:-1], dims[1:]):
        layers += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(64, 2))


def make_d():
    dims = [2, 64, 128, 128, 64]
    layers = []
    for a, b in zip(dims[:-1], dims[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(64, 1), nn.Sigmoid())


def g_state(g):
    """gantl's names: fcI.weight/bias, bnI.weight/bias/running_mean/running_var."""
    out, lin, bn = {}, 0, 0
    for m in g:
        if isinstance(m, nn.Linear):
            out[f"fc{lin}.weight"], out[f"fc{lin}.bias"] = m.weight, m.bias
            lin += 1
        elif isinstance(m, nn.BatchNorm1d):
            out[f"bn{bn}.weight"], out[f"bn{bn}.bias"] = m.weight, m.bias
            out[f"bn{bn}.running_mean"], out[f"bn{bn}.running_var"] = m.running_mean, m.running_var
            bn += 1
    return {k: v.detach().numpy().copy() for k, v in out.items()}


def d_state(d):
    lins = [m for m in d if isinstance(m, nn.Linear)]
    out = {}
    for i, m in enumerate(lins):
        out[f"fc{i}.weight"], out[f"fc{i}.bias"] = m.weight, m.bias
    return {k: v.detach().numpy().copy() for k, v in out.items()}


def centres():
    k = np.array([5, 4, -4, 3, -3, 2, -2, 0, 1, -1])
    a = k * 2 * np.pi / 10
    return np.stack([20 * np.cos(a), 20 * np.sin(a)], 1)


def similarity(d, x):
    """mean cos(c(x) - x, grad_x(-log D(x))) over the finite values (the authors' sign)."""
    x = torch.tensor(x, requires_grad=True)
    loss = -torch.log(d(x)).mean()
    (g,) = torch.autograd.grad(loss, x)
    c = centres()
    xn = x.detach().double().numpy()
    nearest = c[np.argmin(((xn[:, None, :] - c[None]) ** 2).sum(-1), 1)]
    to_c = nearest - xn
    gn = g.double().numpy()
    cos = (to_c * gn).sum(1) / (np.linalg.norm(to_c, axis=1) * np.linalg.norm(gn, axis=1))
    return cos[np.isfinite(cos)].mean()


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures",
                                                              "toy2d_replay.safetensors")
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    g, d = make_g(), make_d()
    t = {}
    for k, v in g_state(g).items():
        t["G." + k] = v
    for k, v in d_state(d).items():
        t["D." + k] = v
    # batches: real points near the target's centres, latents N(0, 1)
    real = (centres()[rng.integers(0, 10, (ITERS, BATCH))] + 0.25 * rng.standard_normal((ITERS, BATCH, 2)))
    z_d = rng.standard_normal((ITERS, BATCH, Z))
    n_g = (ITERS + 3) // 4
    z_g = rng.standard_normal((n_g, BATCH, Z))
    real, z_d, z_g = real.astype(np.float32), z_d.astype(np.float32), z_g.astype(np.float32)
    t["real"], t["z_d"], t["z_g"] = real, z_d, z_g
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.BCELoss()
    g.train()
    d_losses, g_losses = [], []
    for it in range(ITERS):
        # D step: G in training mode (its BatchNorm statistics move), not trained
        with torch.no_grad():
            fake = g(torch.from_numpy(z_d[it]))
        opt_d.zero_grad()
        d_real = d(torch.from_numpy(real[it]))
        d_fake = d(fake)
        loss_d = bce(d_real, torch.ones_like(d_real)) + bce(d_fake, torch.zeros_like(d_fake))
        loss_d.backward()
        opt_d.step()
        d_losses.append(loss_d.item())
        if it % 4 != 0:
            continue
        opt_g.zero_grad()
        d_g = d(g(torch.from_numpy(z_g[it // 4])))
        loss_g = bce(d_g, torch.ones_like(d_g))
        loss_g.backward()
        opt_g.step()
        g_losses.append(loss_g.item())
    for k, v in g_state(g).items():
        t["expected.G." + k] = v
    for k, v in d_state(d).items():
        t["expected.D." + k] = v
    t["expected.d_loss"] = np.array(d_losses, np.float64)
    t["expected.g_loss"] = np.array(g_losses, np.float64)
    # eval-mode generation and the grad-D similarity at points around the circle
    g.eval()
    with torch.no_grad():
        t["expected.g_eval"] = g(torch.from_numpy(z_d[0][:16])).numpy()
    sim_x = (18 * np.stack([np.cos(np.linspace(0, 6, 200)), np.sin(np.linspace(0, 6, 200))], 1)
             + rng.standard_normal((200, 2))).astype(np.float32)
    t["sim_x"] = sim_x
    t["expected.similarity"] = np.array([similarity(d, sim_x)], np.float64)
    safetensors_io.save(out, t, {"source": "tools/toy2d_ref.py", "torch": torch.__version__, "iters": str(ITERS)})
    print(f"wrote {out}: d_loss {d_losses[0]:.4f} -> {d_losses[-1]:.4f}, similarity {t['expected.similarity'][0]:.4f}")


if __name__ == "__main__":
    main()
