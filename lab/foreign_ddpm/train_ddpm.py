"""Issue 41: a foreign diffusion model trained with diffusers' standard DDPM recipe, for
checking that ``load_prior("diffusers:...")`` is right on a model this project did not write.

Recipe (diffusers' ``examples/unconditional_image_generation``): ``UNet2DModel``,
``DDPMScheduler`` with 1000 linear betas (1e-4 .. 0.02), epsilon prediction, MSE on the noise,
AdamW (lr 1e-4, warm-up 500 steps, cosine decay), EMA of the weights (warm-up power 3/4, max
decay 0.9999). Data: random 64x64 patches of CBSD432 without the 32 validation images (the
split our teacher left out), with flips and turns.

The output folder is a diffusers pipeline folder (``unet/`` with the EMA weights,
``scheduler/``): ``load_prior("diffusers:OUT")`` reads it. Training state for ``--resume``
(raw weights, EMA, optimiser, step) is in ``OUT/state/``; a checkpoint every ``--every`` steps
and on SIGTERM / Ctrl-C.

    python lab/foreign_ddpm/train_ddpm.py --data ../shared/data/cbsd432 \
        --exclude benchmarks/splits/cbsd432_val32.txt --out lab/runs/foreign-ddpm --steps 20000 [--resume]
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import time
from pathlib import Path

import torch
from diffusers import DDPMScheduler, UNet2DModel
from diffusers.training_utils import EMAModel

from ncvsd_inverse.io import list_images, read_name_list
from ncvsd_inverse.training.data import PatchDataset, step_generator


def build_unet(patch: int) -> UNet2DModel:
    """A small UNet2DModel (4.3M parameters): four levels, one attention level at 8x8."""
    return UNet2DModel(sample_size=patch, in_channels=3, out_channels=3, layers_per_block=1,
                       block_out_channels=(32, 64, 128, 128),
                       down_block_types=("DownBlock2D", "DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
                       up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D", "UpBlock2D"))


def learning_rate(step: int, total: int, peak: float, warmup: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


def save(out: Path, unet, ema, optimizer, scheduler, step: int, args) -> None:
    state = out / "state"
    state.mkdir(parents=True, exist_ok=True)
    unet.save_pretrained(state / "raw")
    torch.save({"optimizer": optimizer.state_dict(), "ema": ema.state_dict(), "step": step}, state / "train.pt")
    shadow = build_unet(args.patch)
    ema.copy_to(shadow.parameters())
    shadow.save_pretrained(out / "unet")
    scheduler.save_pretrained(out / "scheduler")
    (out / "train.json").write_text(json.dumps({"step": step, **vars(args)}, indent=1, default=str))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--exclude", type=Path, default=None)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--patch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--every", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    excluded = set(read_name_list(args.exclude)) if args.exclude else set()
    names = [path.name for path in list_images(args.data) if path.name not in excluded]
    data = PatchDataset(args.data, args.patch, files=names)
    unet = build_unet(args.patch)
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", beta_start=1e-4, beta_end=0.02,
                              prediction_type="epsilon", clip_sample=False)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=args.lr, betas=(0.95, 0.999), weight_decay=1e-6, eps=1e-8)
    ema = EMAModel(unet.parameters(), decay=0.9999, use_ema_warmup=True, inv_gamma=1.0, power=0.75)
    step = 0
    if args.resume and (args.out / "state" / "train.pt").exists():
        unet = UNet2DModel.from_pretrained(args.out / "state" / "raw")
        optimizer = torch.optim.AdamW(unet.parameters(), lr=args.lr, betas=(0.95, 0.999), weight_decay=1e-6,
                                      eps=1e-8)
        saved = torch.load(args.out / "state" / "train.pt", weights_only=True)
        optimizer.load_state_dict(saved["optimizer"])
        ema = EMAModel(unet.parameters(), decay=0.9999, use_ema_warmup=True, inv_gamma=1.0, power=0.75)
        ema.load_state_dict(saved["ema"])
        step = saved["step"]
    print(f"{sum(p.numel() for p in unet.parameters()):,} parameters, {len(data)} images, from step {step}",
          flush=True)
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    started, losses = time.time(), []
    try:
        while step < args.steps and not stop["now"]:
            rng = step_generator(args.seed, step, 0)
            clean = data.batch(args.batch, rng)
            noise = torch.randn(clean.shape, generator=rng)
            t = torch.randint(0, 1000, (args.batch,), generator=rng)
            noisy = scheduler.add_noise(clean, noise, t)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, args.steps, args.lr, 500)
            loss = torch.nn.functional.mse_loss(unet(noisy, t).sample, noise)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
            optimizer.step()
            ema.step(unet.parameters())
            step += 1
            losses.append(float(loss.detach()))
            if step % 50 == 0:
                print(json.dumps({"step": step, "loss": sum(losses) / len(losses), "s_per_step":
                                  (time.time() - started) / len(losses), "lr": optimizer.param_groups[0]["lr"],
                                  "ema_decay": ema.cur_decay_value}), flush=True)
                losses, started = [], time.time()
            if step % args.every == 0:
                save(args.out, unet, ema, optimizer, scheduler, step, args)
    except KeyboardInterrupt:
        pass
    save(args.out, unet, ema, optimizer, scheduler, step, args)


if __name__ == "__main__":
    main()
