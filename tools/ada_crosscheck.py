#!/usr/bin/python3
"""Cross-checks tools/ada_ref.py against the official AugmentPipe (NVlabs/stylegan2-ada-pytorch).

Usage (from the repository root):
  /usr/bin/python3 tools/ada_crosscheck.py /path/to/stylegan2-ada-pytorch-checkout

Nothing of the official code is part of this repository: it is imported from the given checkout
at run time (on CPU its custom ops fall back to their reference implementations).

Checks, for RGB and grey images, several p, the full 'bgc' preset and every single op:
  1. seeding: torch.manual_seed(s) for the official pipeline and a generator seeded with s for
     draw(); the official torch.rand/torch.randn results are recorded and must equal the raw and
     gate samples of draw() bit for bit (order, shapes, count);
  2. replay: torch.rand/torch.randn are replaced by a player that hands the official pipeline
     the samples stored in the draws dict (so any draws, e.g. made by the C side, can be checked);
  3. the official output vs apply(x, draws), the reflect-pad amounts and the affine_grid theta,
     and the gradient of sum(y * r) w.r.t. x (first order; the official pipeline cannot do second
     order on torch 1.13, see gen_ada_fixtures.py for the float64 finite-difference check);
  4. every image case of tests/fixtures/ada.safetensors: its stored draws replayed into the
     official pipeline must give the stored y, and its stored r the stored gx.
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ada_ref  # noqa: E402


def sequence(draws):
    """The official call sequence: (kind, tensor) for each step that was drawn."""
    seq = []
    kinds = {"scale": "randn", "aniso": "randn", "xfrac": "randn", "brightness": "randn",
             "contrast": "randn", "saturation": "randn"}
    mult = dict(zip(ada_ref.OPS, draws["ops"].tolist()))
    rgb = int(draws["num_channels"].item()) > 1
    for k in ada_ref.STEPS:
        op = "rotate" if k.startswith("rotate_") else k
        if mult[op] <= 0 or (k in ("hue", "saturation") and not rgb):
            continue
        seq.append((kinds.get(k, "rand"), draws[k + ".raw"]))
        seq.append(("rand", draws[k + ".gate"]))
    return seq


class Patch:
    """Wraps torch.rand / torch.randn (record) or replaces them (replay); also records the
    arguments of F.pad(mode='reflect') and F.affine_grid."""

    def __init__(self, replay=None):
        self.replay = list(replay) if replay is not None else None
        self.calls, self.pads, self.thetas = [], [], []

    def __enter__(self):
        self.saved = (torch.rand, torch.randn, F.pad, F.affine_grid)
        rand0, randn0, pad0, ag0 = self.saved

        def make(kind, orig):
            def fn(*args, **kw):
                shape = args[0] if args else kw["size"]
                if self.replay is None:
                    t = orig(*args, **kw)
                else:
                    k, t = self.replay.pop(0)
                    assert k == kind and t.numel() == torch.Size(shape).numel(), (k, kind, shape)
                    t = t.reshape(shape).clone()
                self.calls.append((kind, t.detach().clone()))
                return t
            return fn

        def pad(input, pad, mode="constant", value=None):
            if mode == "reflect":
                self.pads.append(tuple(int(v) for v in pad))
            return pad0(input, pad, mode=mode) if value is None else pad0(input, pad, mode, value)

        def affine_grid(theta, size, align_corners=None):
            self.thetas.append(theta.detach().clone())
            return ag0(theta, size, align_corners=align_corners)

        torch.rand, torch.randn = make("rand", rand0), make("randn", randn0)
        F.pad, F.affine_grid = pad, affine_grid
        return self

    def __exit__(self, *exc):
        torch.rand, torch.randn, F.pad, F.affine_grid = self.saved
        return False


def plan_of(x, draws):
    g, _ = ada_ref.matrices(draws, x.shape[2], x.shape[3])
    if g is None:
        return None, None
    pad, theta, _ = ada_ref.geom_plan(g, x.shape[2], x.shape[3])
    return pad, theta


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.path.insert(0, sys.argv[1])
    from training.augment import AugmentPipe  # official, imported at run time only

    worst = {"draws": 0.0, "y_seed": 0.0, "y_replay": 0.0, "gx": 0.0, "theta": 0.0}
    configs = [("bgc", ada_ref.BGC)] + [(k, {k: 1.0}) for k in ada_ref.OPS]
    n = 0
    for nc, h, w in [(3, 16, 16), (1, 32, 32), (3, 12, 20), (3, 64, 64)]:
        for name, ops in configs:
            for p in ([0.0, 0.3, 0.7, 1.0] if name == "bgc" else [1.0, 0.5]):
                seed = 1000 + n
                n += 1
                b = 6
                x = torch.randn(b, nc, h, w)
                pipe = AugmentPipe(**ops)
                pipe.p.copy_(torch.tensor(p))
                # 1. seeding
                torch.manual_seed(seed)
                with Patch() as rec:
                    y_off = pipe(x)
                draws = ada_ref.draw(b, p, torch.Generator().manual_seed(seed), nc, ops)
                seq = sequence(draws)
                assert len(seq) == len(rec.calls), (len(seq), len(rec.calls))
                for (k1, t1), (k2, t2) in zip(seq, rec.calls):
                    assert k1 == k2
                    worst["draws"] = max(worst["draws"], (t1.flatten() - t2.flatten()).abs().max().item())
                y = ada_ref.apply(x, draws)
                worst["y_seed"] = max(worst["y_seed"], (y - y_off).abs().max().item())
                # 2. replay (torch RNG not used) + plan + first-order gradient
                xr = x.clone().requires_grad_(True)
                with Patch(replay=seq) as rep:
                    y_rep = pipe(xr)
                assert not rep.replay
                pad, theta = plan_of(x, draws)
                if pad is None:
                    assert not rep.pads and not rep.thetas
                else:
                    assert rep.pads == [pad], (rep.pads, pad)
                    worst["theta"] = max(worst["theta"], (rep.thetas[0] - theta).abs().max().item())
                worst["y_replay"] = max(worst["y_replay"], (y_rep - y).abs().max().item())
                r = torch.randn_like(y)
                gx_off, = torch.autograd.grad((y_rep * r).sum(), xr)
                xm = x.clone().requires_grad_(True)
                gx, = torch.autograd.grad((ada_ref.apply(xm, draws) * r).sum(), xm)
                worst["gx"] = max(worst["gx"], (gx - gx_off).abs().max().item())
    # 4. the committed fixtures
    import json
    import safetensors_io
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures",
                        "ada.safetensors")
    tensors, meta = safetensors_io.load(path)
    fx = {"y": 0.0, "gx": 0.0}
    for case, info in meta.items():
        info = json.loads(info)
        t = {k[len(case) + 1:]: torch.from_numpy(v) for k, v in tensors.items() if k.startswith(case + ".")}
        draws = {k[5:]: v for k, v in t.items() if k.startswith("draw.")}
        draws["ops"] = t["ops"]
        draws["num_channels"] = torch.tensor([float(info["channels"])])
        pipe = AugmentPipe(**{k: 1.0 for k in info["ops"]})
        pipe.p.copy_(t["p"][0])
        xr = t["x"].clone().requires_grad_(True)
        with Patch(replay=sequence(draws)) as rep:
            y_off = pipe(xr)
        assert not rep.replay
        gx_off, = torch.autograd.grad((y_off * t["r"]).sum(), xr)
        fx["y"] = max(fx["y"], (y_off - t["y"]).abs().max().item())
        fx["gx"] = max(fx["gx"], (gx_off - t["gx"]).abs().max().item())
    print(f"fixtures: {len(meta)} image cases replayed into the official pipeline: "
          f"max |diff| y {fx['y']:.3g}, gx {fx['gx']:.3g}")
    worst["fixture_y"], worst["fixture_gx"] = fx["y"], fx["gx"]

    print(f"{n} configurations (batch 6; RGB 16x16, grey 32x32, RGB 12x20, RGB 64x64; "
          f"'bgc' at p 0/0.3/0.7/1 and each single op at p 1/0.5)")
    for k, v in worst.items():
        print(f"  max |diff| {k:10s} {v:.3g}")
    ok = worst["draws"] == 0 and max(worst["y_seed"], worst["y_replay"], worst["gx"],
                                     worst["fixture_y"], worst["fixture_gx"]) < 1e-5
    print("OK" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
