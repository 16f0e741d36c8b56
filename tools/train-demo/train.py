"""Trains the ea-demo model set from scratch, on CPU, and exports it in EasyAnimate v1's release layout.

    python3 tools/train-demo/train.py --out fixtures/ea-demo            (the whole recipe, seeded)

Stages (EasyAnimate's recipe in miniature; each saves a checkpoint in --work, --from STAGE resumes):
  data         the synthetic clips in EasyAnimate's format (base: filled shapes; outline: the personalized style)
  tokenizer    a SentencePiece unigram model on the caption grammar (T5 conventions, +100 extra ids)
  vae          AutoencoderKL on single frames of both datasets (MSE + tiny KL)
  decoder      its decoder trained further with the loss weighted on the shape (encoder and latents unchanged)
  dit2d        the PixArt Transformer2DModel + T5 encoder on single frames near a clip's start, where the direction
               word says where the shape is, each with its shape partners (the same frame drawn as the other
               shapes, same noise; v prediction, DDPM linear betas)
  motion       the motion module on 8-frame clips with the 2D part, each clip with its partners (itself played
               backwards with the opposite direction's caption, its path drawn as the other shapes; same noise);
               T5 frozen (BF16-rounded; --mm-train-t5 trains it)
  personalized the 2D backbone fine-tuned on outline clips, the motion module in the loop (caption path frozen)
  lora         a kohya LoRA from the SVD of (personalized - base) per Linear
  export       fixtures/ea-demo in the release's file layout and key names
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import shutil
import sys
import time

# On a shared machine OpenMP's default spin-waiting makes torch's 2 threads 3-4x slower whenever another process
# holds a core (measured here: a dit2d step 4.6 s vs 1.3 s passive); sleeping waiters cost little when it is idle.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grammar  # noqa: E402
import make_dataset  # noqa: E402
import models  # noqa: E402

STAGES = ["data", "tokenizer", "vae", "decoder", "dit2d", "motion", "personalized", "lora", "export"]
PIXART = "demo-pixart"
YAML = "easyanimate_video_motion_module_v1.yaml"


# ---------------------------------------------------------------------------------------------- helpers
def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, flush=True)


class EMA:
    def __init__(self, module: torch.nn.Module, decay: float = 0.999):
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in module.state_dict().items()}
        self.steps = 0

    @torch.no_grad()
    def update(self, module):
        self.steps += 1
        d = min(self.decay, (1 + self.steps) / (10 + self.steps))
        for k, v in module.state_dict().items():
            if v.dtype.is_floating_point:
                self.shadow[k].mul_(d).add_(v.detach(), alpha=1 - d)
            else:
                self.shadow[k].copy_(v)


def stop_requested(a, stage: str, step: int) -> bool:
    """True when WORK/STOP-<stage> exists: the stage ends now and saves its EMA weights as if it were done (a way
    to cut a run short on a shared machine without losing it)."""
    path = os.path.join(a.work, f"STOP-{stage}")
    if os.path.exists(path):
        os.remove(path)
        log(f"{stage}: stopped at step {step} ({path})")
        return True
    return False


def lr_at(step: int, total: int, peak: float, warmup: int = 100) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup))) * 0.9 + peak * 0.1 * (1 - step / total)


def ddpm_alphas_cumprod() -> torch.Tensor:
    """DDPM linear betas of the yaml: beta 0.0001 → 0.02 over 1000 steps."""
    betas = torch.linspace(0.0001, 0.02, 1000, dtype=torch.float64)
    return torch.cumprod(1 - betas, 0).float()


def tokenizer(work: str):
    from transformers import T5Tokenizer
    return T5Tokenizer.from_pretrained(os.path.join(work, "tokenizer"))


def encode_text(tok, texts, length: int = 16):
    """The pipeline's preprocessing (lower, strip), padded to `length` (equivalent to 120: padding is masked)."""
    enc = tok([t.lower().strip() for t in texts], padding="max_length", max_length=length, truncation=True,
              add_special_tokens=True, return_tensors="pt")
    return enc.input_ids, enc.attention_mask


# ---------------------------------------------------------------------------------------------- stages
def stage_data(a):
    if os.path.exists(os.path.join(a.work, "latents.json")):
        os.remove(os.path.join(a.work, "latents.json"))  # new clips, new latents
    for name, clips, seed, outline in (("base", a.clips, a.seed, False), ("outline", a.clips // 4, a.seed + 1, True)):
        d = os.path.join(a.work, "data", name)
        if os.path.exists(d):
            shutil.rmtree(d)
        make_dataset.make(d, clips, seed, outline)
        make_dataset.load(d)  # decode the MP4s once (what training reads)
        log(f"data: {clips} clips in {d}")


def stage_tokenizer(a):
    import sentencepiece as spm
    from transformers import T5Tokenizer
    d = os.path.join(a.work, "tokenizer")
    if a.init_from:  # the init set's own tokenizer: its T5 embeddings are indexed by those ids
        if os.path.exists(d):
            shutil.rmtree(d)
        shutil.copytree(os.path.join(a.init_from, PIXART, "tokenizer"), d)
        log(f"tokenizer: copied from {a.init_from}")
        return
    os.makedirs(d, exist_ok=True)
    sentences = [grammar.caption(*c[:3], c[3]) for c in grammar.combinations()]
    # On a corpus this small the unigram trainer only keeps whole words when they are also seen on their own.
    words = sorted(set(" ".join(sentences).split()))
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(words * 50 + sentences), model_prefix=os.path.join(d, "spiece"), vocab_size=60,
        model_type="unigram", normalization_rule_name="nmt_nfkc", pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
        hard_vocab_limit=False, character_coverage=1.0, num_threads=1, minloglevel=2)
    tok = T5Tokenizer(vocab_file=os.path.join(d, "spiece.model"), extra_ids=100, legacy=True, model_max_length=120)
    os.remove(os.path.join(d, "spiece.vocab"))
    tok.save_pretrained(d)
    log(f"tokenizer: {len(tok)} ids; '{sentences[0]}' -> {tok.tokenize(sentences[0])}")


def frames_of(work, name):
    clips, texts = make_dataset.load(os.path.join(work, "data", name))
    return clips, texts


def to_pixels(u8: np.ndarray) -> torch.Tensor:
    """uint8 [..., H, W, 3] → float [..., 3, H, W] in [-1, 1]."""
    t = torch.from_numpy(u8).float() / 127.5 - 1
    return t.movedim(-1, -3)


def crops_around_shapes(frames: np.ndarray, rng, size: int = 40) -> np.ndarray:
    """A size x size crop of each frame containing (most of) its shape: centred on the pixels unlike the corner."""
    out = np.empty((len(frames), size, size, 3), dtype=frames.dtype)
    for i, f in enumerate(frames):
        ys, xs = np.nonzero(np.abs(f.astype(np.int16) - f[0, 0].astype(np.int16)).max(-1) > 25)
        cy, cx = (ys.mean(), xs.mean()) if len(ys) else (32, 32)
        y0 = int(np.clip(cy - size / 2 + rng.integers(-6, 7), 0, 64 - size))
        x0 = int(np.clip(cx - size / 2 + rng.integers(-6, 7), 0, 64 - size))
        out[i] = f[y0:y0 + size, x0:x0 + size]
    return out


def stage_vae(a):
    torch.manual_seed(a.seed)
    base, _ = frames_of(a.work, "base")
    outline, _ = frames_of(a.work, "outline")
    pool = np.concatenate([base.reshape(-1, 64, 64, 3), outline.reshape(-1, 64, 64, 3)])
    if a.vae_from:  # that set's VAE as it is: its latent space, scaling factor and decoder
        vae = models.AutoencoderKL.from_pretrained(os.path.join(a.vae_from, PIXART, "vae")).eval()
        return write_latents(a, vae, vae.config.scaling_factor)
    if a.init_from:
        return finetune_vae_decoder(a, pool)
    vae = models.make_vae()
    opt = torch.optim.AdamW(vae.parameters(), lr=a.vae_lr, weight_decay=0.0)
    rng = np.random.default_rng(a.seed)
    # Most steps see 40x40 crops around the shape (a shape covers a few % of a frame: full frames spend the
    # compute on the background); the last 30 % see whole frames and the sampled posterior, as it is used.
    crop_steps = int(0.7 * a.vae_steps)
    for step in range(a.vae_steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, a.vae_steps, a.vae_lr)
        if step < crop_steps:
            x = to_pixels(crops_around_shapes(pool[rng.integers(0, len(pool), a.vae_batch + a.vae_batch // 2)], rng))
        else:
            x = to_pixels(pool[rng.integers(0, len(pool), a.vae_batch)])
        post = vae.encode(x).latent_dist
        z = post.mean if step < crop_steps else post.sample()
        y = vae.decode(z).sample
        rec = F.mse_loss(y, x) + 0.5 * F.l1_loss(y, x)
        loss = rec + 1e-6 * post.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == a.vae_steps - 1:
            log(f"vae step {step}/{a.vae_steps} rec {rec.item():.5f}")
    vae.eval()
    write_latents(a, vae, scale=None)
    if os.path.exists(os.path.join(a.work, "latents.json")):
        os.remove(os.path.join(a.work, "latents.json"))


def write_latents(a, vae, scale):
    """The posterior of every frame (latents.pt) and the VAE in the work folder; scale None: 1/std of the latents,
    as SD's scaling factor was chosen."""
    out = {}
    with torch.no_grad():
        for name in ("base", "outline"):
            clips, _ = frames_of(a.work, name)
            flat = clips.reshape(-1, 64, 64, 3)
            means, stds = [], []
            for i in range(0, len(flat), 256):
                post = vae.encode(to_pixels(flat[i:i + 256])).latent_dist
                means.append(post.mean)
                stds.append(post.std)
            shape = (clips.shape[0], clips.shape[1]) + tuple(means[0].shape[1:])
            out[name] = (torch.cat(means).view(shape), torch.cat(stds).view(shape))
    if scale is None:
        scale = round(float(1 / out["base"][0].std()), 5)
    vae.register_to_config(scaling_factor=scale)
    d = os.path.join(a.work, "vae")
    vae.save_pretrained(d, safe_serialization=True)
    torch.save({k: v for k, v in out.items()}, os.path.join(a.work, "latents.pt"))
    log(f"vae: scaling_factor {vae.config.scaling_factor}, latent std mean {out['base'][1].mean():.2e}")


def shape_weights(x: torch.Tensor, gain: float) -> torch.Tensor:
    """[B, 3, H, W] in [-1, 1] → per-pixel loss weights: 1 + gain on and around the shape (pixels unlike the
    corner, dilated by 2 px), so the few % of a frame the judge looks at dominate the loss."""
    on = ((x - x[:, :, :1, :1]).abs().amax(1, keepdim=True) > 0.2).float()
    return 1 + gain * F.max_pool2d(on, 5, stride=1, padding=2)


def finetune_vae_decoder(a, pool):
    """Fine-tunes the init set's decoder (and post_quant_conv) on whole frames and sampled latents; the encoder,
    and so the latent space the init transformer was trained in, stays exactly as it was."""
    source = os.path.realpath(os.path.join(a.init_from, PIXART, "vae"))
    vae = models.AutoencoderKL.from_pretrained(source)
    scale = vae.config.scaling_factor
    vae.eval()
    stamp = os.path.join(a.work, "latents.json")  # the latents depend only on the frozen encoder and the data
    if not (os.path.exists(stamp) and json.load(open(stamp)).get("encoder") == source
            and os.path.exists(os.path.join(a.work, "latents.pt"))):
        write_latents(a, vae, scale)  # the encoder is frozen: the later stages may start now
        json.dump({"encoder": source}, open(stamp, "w"))
    train_decoder(a, vae, pool, a.vae_steps)


def stage_decoder(a):
    """The work folder's VAE decoder (and post_quant_conv) trained further, the loss weighted on and around the
    shape: the encoder, the latents and the scaling factor stay as the vae stage wrote them, so this stage is
    independent of dit2d and motion (it may run after them). The judge's shape classes need sharp corners, which
    the whole-frame loss of the vae stage spends little on."""
    if a.init_from or a.vae_from or a.decoder_steps <= 0:
        log("decoder: skipped (--init-from trains the decoder in the vae stage; --vae-from; --decoder-steps 0)")
        return
    torch.manual_seed(a.seed + 5)
    base, _ = frames_of(a.work, "base")
    outline, _ = frames_of(a.work, "outline")
    pool = np.concatenate([base.reshape(-1, 64, 64, 3), outline.reshape(-1, 64, 64, 3)])
    vae = models.AutoencoderKL.from_pretrained(os.path.join(a.work, "vae"))
    train_decoder(a, vae, pool, a.decoder_steps, lr=a.decoder_lr)


def train_decoder(a, vae, pool, steps, lr=None):
    lr = lr or a.vae_lr
    vae.eval()
    vae.requires_grad_(False)
    params = list(vae.decoder.parameters()) + list(vae.post_quant_conv.parameters())
    for p in params:
        p.requires_grad_(True)
    vae.decoder.train()
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    rng = np.random.default_rng(a.seed + 5)
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, lr)
        x = to_pixels(pool[rng.integers(0, len(pool), a.vae_batch)])
        with torch.no_grad():
            z = vae.encode(x).latent_dist.sample()
        y = vae.decode(z).sample
        w = shape_weights(x, a.vae_shape_gain)
        rec = ((y - x) ** 2 * w).mean() + 0.5 * ((y - x).abs() * w).mean()
        opt.zero_grad(set_to_none=True)
        rec.backward()
        opt.step()
        if step % 100 == 0 or step == steps - 1:
            log(f"vae decoder step {step}/{steps} weighted rec {rec.item():.5f}")
    vae.eval()
    vae.save_pretrained(os.path.join(a.work, "vae"), safe_serialization=True)


def latents_of(a, name):
    data = torch.load(os.path.join(a.work, "latents.pt"))
    mean, std = data[name]
    scale = json.load(open(os.path.join(a.work, "vae", "config.json")))["scaling_factor"]
    return mean, std, scale


LATENT_SAMPLING = "mean"  # set by --latent-sampling


def sample_latents(mean, std, scale, idx, frames=None):
    """The training latents x the scaling factor: the posterior mean (default), or a sample of the posterior as
    EasyAnimate does (latent_dist.sample()). This VAE's posterior std is ~0.85 of latents whose std is ~1.9
    (KL weight 1e-6, 70 % of the VAE steps on the mean): sampling puts ~20 % of x0's variance in noise the
    transformer cannot predict; the decoder reconstructs the mean as well as a sample (check_vae.py)."""
    m, s = mean[idx], std[idx]
    if frames is not None:
        m, s = m[:, frames], s[:, frames]
    if LATENT_SAMPLING == "mean":
        return m * scale
    return (m + s * torch.randn_like(m)) * scale


MIN_SNR_GAMMA = 5.0  # set by --min-snr-gamma (0: the plain MSE of the prediction)
T_POWER = 1.0  # the motion stage sets it from --mm-t-power (1: uniform timesteps)
X0_WEIGHT_MAX = 0.0  # the motion stage sets it from --mm-x0-weight (0: off; eps prediction only)
PREDICTION = "epsilon"  # the model's prediction_type: --prediction for dit2d, then what dit2d.pt records
EDGE_WEIGHT = 0.0  # the motion stage sets it from --mm-edge-weight (0: off)


def edge_weights(x0: torch.Tensor, gain: float) -> torch.Tensor:
    """Per latent pixel of x0 [B, C, F, H, W]: 1 + gain on a band of two latent pixels around the shape's outline
    (where a square and a circle of the same size differ, the corners included), 1 elsewhere. The shape is where
    the latent differs from the background (the median of the frame's border) by more than half the most."""
    b, c, f, h, w = x0.shape
    frames = x0.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)
    border = torch.cat([frames[..., 0, :], frames[..., -1, :], frames[..., :, 0], frames[..., :, -1]], dim=-1)
    dist = (frames - border.median(dim=-1).values[..., None, None]).norm(dim=1, keepdim=True)
    mask = (dist > 0.5 * dist.amax(dim=(2, 3), keepdim=True)).float()
    band = F.max_pool2d(mask, 3, 1, 1) + F.max_pool2d(-mask, 3, 1, 1)   # dilated minus eroded
    return (1 + gain * band).reshape(b, f, 1, h, w).permute(0, 2, 1, 3, 4)


def prediction_target(x0, noise, ab):
    """What the network's first half predicts: eps, or v = sqrt(ab) eps - sqrt(1 - ab) x0 (Salimans & Ho 2022)."""
    if PREDICTION == "v_prediction":
        return ab.sqrt() * noise - (1 - ab).sqrt() * x0
    return noise


def predicted_x0(out, xt, ab):
    """The x0 estimate of a prediction (diffusers' convert_model_output for either prediction_type)."""
    if PREDICTION == "v_prediction":
        return ab.sqrt() * xt - (1 - ab).sqrt() * out
    return (xt - (1 - ab).sqrt() * out) / ab.sqrt()


def diffusion_loss(model, x0, ids, mask, t5, acp, use_motion, groups=1):
    """x0 [B, C, F, H, W]: the MSE of the prediction (the first half of the learned-sigma output), each sample
    weighted so that in x0 terms (eps MSE = SNR x0 MSE, v MSE = (SNR + 1) x0 MSE) its weight is
    - eps: min(SNR, gamma) (Min-SNR-gamma, Hang et al. 2023): the nearly noise-free steps stop dominating;
    - v: min(SNR + 1, gamma): the same cap, and at high noise x0 errors keep weight 1 instead of SNR (4e-4 at
      t = 900), so the model learns the layout the caption implies where x_t does not show it yet (the
      direction a shape moves is decided there, see the README's session 7).
    groups: the batch is that many blocks, the first the clips drawn, each other one their partners (time-reversed
    clips, the same path in another shape, see motion_batch), noised with the same t and noise: at high noise
    the inputs of a clip and its partners are nearly equal and only the captions tell them apart."""
    b = x0.shape[0]
    drawn = b // groups
    if T_POWER == 1.0:
        t = torch.randint(0, 1000, (drawn,))
    else:  # density of t ∝ t^(T_POWER - 1): towards high noise for T_POWER > 1 (see --mm-t-power)
        t = (1000 * torch.rand(drawn) ** (1 / T_POWER)).long().clamp(0, 999)
    noise = torch.randn_like(x0[:drawn])
    t, noise = t.repeat(groups), noise.repeat(groups, *[1] * (noise.dim() - 1))
    ab = acp[t].view(b, 1, 1, 1, 1)
    xt = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
    ctx = t5(ids, attention_mask=mask).last_hidden_state
    out = model(xt, t, ctx, mask, use_motion=use_motion)
    error = (out[:, :x0.shape[1]] - prediction_target(x0, noise, ab)) ** 2
    if EDGE_WEIGHT > 0:
        error = error * edge_weights(x0, EDGE_WEIGHT)
    per_sample = error.flatten(1).mean(1)
    snr = acp[t] / (1 - acp[t])
    if MIN_SNR_GAMMA <= 0:
        return per_sample.mean()
    if PREDICTION == "v_prediction":
        return (per_sample * torch.clamp(snr + 1, max=MIN_SNR_GAMMA) / (snr + 1)).mean()
    if X0_WEIGHT_MAX > 0:  # the x0 MSE (= eps MSE / SNR) where SNR < 1, at most X0_WEIGHT_MAX x the eps MSE
        per_sample = per_sample * torch.clamp(1 / snr, min=1.0, max=X0_WEIGHT_MAX)
    return (per_sample * torch.clamp(snr, max=MIN_SNR_GAMMA) / snr).mean()


# predict_t2v.py's default negative prompt, which `ea-weights generate` uses unless told otherwise: outside this
# vocabulary (T5's tokenizer spells it out in 120 single-letter pieces), so it must be taught to mean "no caption".
NEGATIVE_PROMPT = ("Strange motion trajectory, a poor composition and deformed video, worst quality, normal quality, "
                   "low quality, low resolution, duplicate and ugly")


def captions_with_dropout(rng, texts, p=0.1, negative_rng=None, negative_steps=0.0):
    """10 % empty captions (the unconditional half of CFG); in a `negative_steps` fraction of the steps (drawn
    from their own generator, so the rest of the recipe is unchanged) those are the default negative prompt."""
    out = ["" if rng.random() < p else t for t in texts]
    if negative_rng is not None and negative_rng.random() < negative_steps:
        out = [NEGATIVE_PROMPT if t == "" else t for t in out]
    return out


def encode_captions(a, tok, rng, texts, negative_rng, p=0.1):
    texts = captions_with_dropout(rng, texts, p=p, negative_rng=negative_rng, negative_steps=a.negative_steps)
    return encode_text(tok, texts, length=models.MAX_TOKENS if NEGATIVE_PROMPT in texts else 16)


def round_bf16_(module):
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(p.to(torch.bfloat16).float())


def dit2d_frames(a, rng, idx, nf, texts):
    """dit2d's frame of each clip idx and its caption: one of the first a.dit_frames frames, or (half the time,
    where the reversed clip is not held out) one of the last ones with the opposite direction's caption, so
    that a single frame tells where a shape moving that way starts and the direction words carry a signal."""
    k = min(nf, a.dit_frames)
    fr = rng.integers(0, k, len(idx))
    caps = [texts[i] for i in idx]
    if k < nf:
        for j, i in enumerate(idx):
            rev = grammar.reversed_caption(texts[i]) if rng.random() < 0.5 else None
            if rev is not None:
                fr[j], caps[j] = nf - 1 - fr[j], rev
    return fr, caps


def stage_dit2d(a):
    torch.manual_seed(a.seed + 2)
    rng = np.random.default_rng(a.seed + 2)
    negative_rng = np.random.default_rng(a.seed + 2 + 100)
    tok = tokenizer(a.work)
    mean, std, scale = latents_of(a, "base")
    _, texts = frames_of(a.work, "base")
    base = models.make_transformer2d()
    model = models.Transformer3D(base, motion=False)
    t5 = models.make_t5(len(tok))
    if a.init_from:  # continue from the init set's transformer (its motion stage's 2D part) and BF16 T5
        base.load_state_dict(init_weights(a, "transformer"), strict=True)
        got = t5.load_state_dict({k: v.float() for k, v in init_weights(a, "text_encoder").items()}, strict=False)
        # the file holds shared.weight only; encoder.embed_tokens is tied to it
        assert not got.unexpected_keys and set(got.missing_keys) <= {"encoder.embed_tokens.weight"}, got
    round_bf16_(t5)
    params = list(base.parameters()) + list(t5.parameters())
    opt = torch.optim.AdamW(params, lr=a.dit_lr, weight_decay=0.0)
    ema_b, ema_t = EMA(base), EMA(t5)
    acp = ddpm_alphas_cumprod()
    n, nf = mean.shape[0], mean.shape[1]
    shapes = shape_latents(a) if a.dit_shape_pairs else None
    groups = len(grammar.SHAPES) if a.dit_shape_pairs else 1
    for step in range(a.dit_steps):
        if stop_requested(a, "dit2d", step) or (a.dit_stop_at and step == a.dit_stop_at):
            break
        for g in opt.param_groups:
            g["lr"] = lr_at(step, a.dit_steps, a.dit_lr, warmup=a.warmup)
        idx = rng.integers(0, n, a.dit_batch // groups)
        fr, caps = dit2d_frames(a, rng, idx, nf, texts)
        x0 = sample_latents(mean[idx, fr], std[idx, fr], scale, slice(None))[:, :, None]
        if a.dit_shape_pairs:
            clip_idx, frame_idx = torch.as_tensor(idx), torch.as_tensor(fr)
            x0, caps = with_shape_partners(x0, caps, lambda s: sample_latents(
                shapes[0][clip_idx, s, frame_idx], shapes[1][clip_idx, s, frame_idx], scale, slice(None))[:, :, None])
        ids, mask = encode_captions(a, tok, rng, caps, negative_rng)
        loss = diffusion_loss(model, x0, ids, mask, t5, acp, use_motion=False, groups=groups)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        ema_b.update(base)
        ema_t.update(t5)
        if step % 100 == 0 or step == a.dit_steps - 1:
            log(f"dit2d step {step}/{a.dit_steps} loss {loss.item():.4f}")
        if a.snapshot_every and step % a.snapshot_every == a.snapshot_every - 1:  # EMA weights, for a look
            torch.save({"base": ema_b.shadow, "t5": ema_t.shadow, "prediction": PREDICTION},
                       os.path.join(a.work, "dit2d-snapshot.pt"))
    base.load_state_dict(ema_b.shadow)
    t5.load_state_dict(ema_t.shadow)
    round_bf16_(t5)  # the release stores T5 in BF16; everything after this sees exactly those weights
    torch.save({"base": base.state_dict(), "t5": t5.state_dict(), "prediction": PREDICTION},
               os.path.join(a.work, "dit2d.pt"))


def init_weights(a, component: str) -> dict:
    """The state dict of one component of the --init-from set (all of its safetensors shards)."""
    from safetensors.torch import load_file
    d = os.path.join(a.init_from, PIXART, component)
    sd = {}
    for f in sorted(os.listdir(d)):
        if f.endswith(".safetensors"):
            sd.update(load_file(os.path.join(d, f)))
    return sd


def load_stage(a, name):
    """A stage's checkpoint; a diffusion checkpoint also sets PREDICTION to the prediction_type it was trained
    with (dit2d's, carried by every later stage: a model keeps its parametrization)."""
    global PREDICTION
    ck = torch.load(os.path.join(a.work, f"{name}.pt"))
    if name in ("dit2d", "motion"):
        PREDICTION = ck.get("prediction", "epsilon")
    return ck


def motion_groups(a) -> int:
    """How many blocks a motion batch has: the clips, their time-reversed partners, their other-shape partners."""
    return 1 + bool(a.mm_reverse_pairs) + (len(grammar.SHAPES) - 1) * bool(a.mm_shape_pairs)


def motion_batch(a, rng, mean, std, scale, texts, shapes=None):
    """One motion-stage batch: a.mm_batch clips, one a.frames window (the same start for the batch), as
    x0 [B, C, F, H, W] (sampled posterior x scaling factor) and the clips' captions, in the same order
    (check_data.py decodes and judges exactly these). With partners (diffusion_loss(groups=motion_groups(a))),
    a.mm_batch / groups clips, then block by block each one's partners, the clip itself where a partner's
    combination is held out (a partner must not teach a held-out combination):
    - a.mm_reverse_pairs: the clip played backwards with the opposite direction's caption;
    - a.mm_shape_pairs: the clip's path drawn in each other shape, with that shape's caption (`shapes`, the
      shape_latents of the clips: [N, len(SHAPES)] of mean and std)."""
    n, nf = mean.shape[0], mean.shape[1]
    idx = rng.integers(0, n, a.mm_batch // motion_groups(a))
    start = int(rng.integers(0, nf - a.frames + 1))
    window = slice(start, start + a.frames)
    x0 = sample_latents(mean, std, scale, idx, window).permute(0, 2, 1, 3, 4)
    caps = [texts[i] for i in idx]
    blocks, block_caps = [x0], [caps]
    if a.mm_reverse_pairs:
        rev = [grammar.reversed_caption(c) for c in caps]
        blocks.append(torch.stack([x.flip(1) if r else x for x, r in zip(x0, rev)]))
        block_caps.append([r or c for r, c in zip(rev, caps)])
    if a.mm_shape_pairs:
        clip_idx = torch.as_tensor(idx)
        x0s, caps_s = with_shape_partners(x0, caps, lambda s: sample_latents(
            shapes[0], shapes[1], scale, (clip_idx, s), window).permute(0, 2, 1, 3, 4))
        blocks.append(x0s[len(idx):])
        block_caps.append(caps_s[len(idx):])
    return torch.cat(blocks), [c for cs in block_caps for c in cs]


def with_shape_partners(x0, caps, partner_latents):
    """x0 [B, ...] with its captions, then block by block for each other shape (the k-th after each clip's own in
    SHAPES' order) the same clips drawn in it, `partner_latents(shape index per clip)` [B, ...], with that shape's
    caption; the clip itself where that combination is held out (a partner must not teach a held-out one)."""
    words = [grammar.parse(c) for c in caps]
    blocks, all_caps = [x0], list(caps)
    for k in range(1, len(grammar.SHAPES)):
        other = [grammar.SHAPES[(grammar.SHAPES.index(w["shape"]) + k) % len(grammar.SHAPES)] for w in words]
        swap = [not grammar.is_held_out(w["colour"], s, w["direction"]) for w, s in zip(words, other)]
        drawn = partner_latents(torch.tensor([grammar.SHAPES.index(s) for s in other]))
        blocks.append(torch.stack([d if ok else x for d, x, ok in zip(drawn, x0, swap)]))
        all_caps += [grammar.caption(w["colour"], s, w["direction"], w["background"]) if ok else c
                     for w, s, ok, c in zip(words, other, swap, caps)]
    return torch.cat(blocks), all_caps


def shape_latents(a, name="base"):
    """The VAE posterior (mean, std) [N, len(SHAPES), F, C, H, W] of every clip of `name` drawn along its own path
    in each shape (make_dataset.shape_partners), encoded by the work folder's encoder (which no stage after vae
    changes), cached in WORK/shape_latents-<name>.pt with the date of the encoder it was made with."""
    path = os.path.join(a.work, f"shape_latents-{name}.pt")
    vae_file = os.path.join(a.work, "vae", "diffusion_pytorch_model.safetensors")
    if os.path.exists(path):
        cached = torch.load(path)
        if cached["encoder_mtime"] == os.path.getmtime(vae_file):
            return cached["latents"]
    vae = models.AutoencoderKL.from_pretrained(os.path.join(a.work, "vae")).eval()
    clips = make_dataset.shape_partners(os.path.join(a.work, "data", name))
    flat = clips.reshape(-1, 64, 64, 3)
    means, stds = [], []
    with torch.no_grad():
        for i in range(0, len(flat), 256):
            post = vae.encode(to_pixels(flat[i:i + 256])).latent_dist
            means.append(post.mean)
            stds.append(post.std)
    shape = clips.shape[:3] + tuple(means[0].shape[1:])
    out = (torch.cat(means).view(shape), torch.cat(stds).view(shape))
    torch.save({"encoder_mtime": os.path.getmtime(vae_file), "latents": out}, path)
    log(f"shape partners: {clips.shape[0]} clips x {clips.shape[1]} shapes encoded")
    return out


def stage_motion(a):
    torch.manual_seed(a.seed + 3)
    rng = np.random.default_rng(a.seed + 3)
    negative_rng = np.random.default_rng(a.seed + 3 + 100)
    tok = tokenizer(a.work)
    mean, std, scale = latents_of(a, "base")
    _, texts = frames_of(a.work, "base")
    ck = load_stage(a, "dit2d")
    base = models.make_transformer2d()
    base.load_state_dict(ck["base"])
    model = models.Transformer3D(base, motion=True)
    if a.mm_resume:  # continue a finished motion stage (2D part and motion module) for --mm-steps more
        done = load_stage(a, "motion")
        base.load_state_dict(done["base"])
        model.load_motion_state_dict(done["motion"])
    elif a.init_from:  # the init set's motion module, on the 2D part the dit2d stage continued
        from safetensors.torch import load_file
        model.load_motion_state_dict(load_file(os.path.join(a.init_from, "motion_module.safetensors")))
    t5 = models.make_t5(len(tok))
    t5.load_state_dict(done["t5"] if a.mm_resume else ck["t5"])
    t5.requires_grad_(a.mm_train_t5)
    groups = [{"params": list(model.motion.parameters()), "peak": a.mm_lr},
              {"params": list(base.parameters()), "peak": a.mm_lr * a.mm_base_lr_ratio}]
    if a.mm_train_t5:  # trained in F32 from the BF16 weights, rounded to BF16 again at the end (as dit2d does)
        groups.append({"params": list(t5.parameters()), "peak": a.mm_lr * a.mm_t5_lr_ratio})
    opt = torch.optim.AdamW(groups, lr=a.mm_lr, weight_decay=0.0)
    ema = EMA(model)
    ema_t = EMA(t5) if a.mm_train_t5 else None
    global T_POWER, X0_WEIGHT_MAX, EDGE_WEIGHT
    T_POWER, X0_WEIGHT_MAX, EDGE_WEIGHT = a.mm_t_power, a.mm_x0_weight, a.mm_edge_weight
    acp = ddpm_alphas_cumprod()
    shapes = shape_latents(a) if a.mm_shape_pairs else None
    n, nf = mean.shape[0], mean.shape[1]
    for step in range(a.mm_steps):
        if stop_requested(a, "motion", step) or (a.mm_stop_at and step == a.mm_stop_at):
            break
        for g in opt.param_groups:
            g["lr"] = lr_at(step, a.mm_steps, g["peak"], warmup=a.mm_warmup or a.warmup)
        x0, batch_texts = motion_batch(a, rng, mean, std, scale, texts, shapes)
        ids, mask = encode_captions(a, tok, rng, batch_texts, negative_rng, p=a.mm_caption_dropout)
        loss = diffusion_loss(model, x0, ids, mask, t5, acp, use_motion=True, groups=motion_groups(a))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([q for g in groups for q in g["params"]], 1.0)
        opt.step()
        ema.update(model)
        if ema_t:
            ema_t.update(t5)
        if step % 50 == 0 or step == a.mm_steps - 1:
            log(f"motion step {step}/{a.mm_steps} loss {loss.item():.4f}")
        if a.snapshot_every and step % a.snapshot_every == a.snapshot_every - 1:
            snap = {k[len("base."):]: v for k, v in ema.shadow.items() if k.startswith("base.")}
            motion = {f"transformer_blocks.{k.split('.', 2)[1]}.attn_temporal.{k.split('.', 2)[2]}": v
                      for k, v in ema.shadow.items() if k.startswith("motion.")}
            torch.save({"base": snap, "t5": ema_t.shadow if ema_t else ck["t5"], "motion": motion,
                        "prediction": PREDICTION},
                       os.path.join(a.work, "motion-snapshot.pt"))  # snapshot_set.py rounds T5 to BF16
    model.load_state_dict(ema.shadow)
    if ema_t:
        t5.load_state_dict(ema_t.shadow)
        round_bf16_(t5)  # the shipped BF16 weights, which every later stage and the export use
    T_POWER, X0_WEIGHT_MAX, EDGE_WEIGHT = 1.0, 0.0, 0.0  # the later stages: uniform timesteps, plain MSE
    torch.save({"base": base.state_dict(), "t5": t5.state_dict(), "motion": model.motion_state_dict(),
                "prediction": PREDICTION}, os.path.join(a.work, "motion.pt"))


# Personalization trains the image path only; the caption path (caption_projection, attn2) and the tables a LoRA
# cannot carry (scale_shift_table, the patch conv) stay as they are, so the LoRA can hold the whole difference.
def personalizable(name: str) -> bool:
    return not (name.startswith("caption_projection") or ".attn2." in name or "scale_shift_table" in name
                or name.startswith("pos_embed"))


def stage_personalized(a):
    """The 2D backbone fine-tuned on outline clips with the motion module in the loop (frozen), batches drawn as
    the motion stage draws them (time-reversed and other-shape partners): a backbone trained on single frames
    drifted away from what the motion module expects and drew broken outlines that changed from frame to frame."""
    torch.manual_seed(a.seed + 4)
    rng = np.random.default_rng(a.seed + 4)
    negative_rng = np.random.default_rng(a.seed + 4 + 100)
    tok = tokenizer(a.work)
    mean, std, scale = latents_of(a, "outline")
    _, texts = frames_of(a.work, "outline")
    shapes = shape_latents(a, "outline") if a.mm_shape_pairs else None
    ck = load_stage(a, "motion")
    base = models.make_transformer2d()
    base.load_state_dict(ck["base"])
    model = models.Transformer3D(base, motion=True)
    model.load_motion_state_dict(ck["motion"])
    model.motion.requires_grad_(False)
    t5 = models.make_t5(len(tok))
    t5.load_state_dict(ck["t5"])
    t5.requires_grad_(False)
    params = [p for k, p in base.named_parameters() if personalizable(k)]
    for k, p in base.named_parameters():
        p.requires_grad_(personalizable(k))
    opt = torch.optim.AdamW(params, lr=a.pers_lr, weight_decay=0.0)
    ema = EMA(base, decay=0.995)
    acp = ddpm_alphas_cumprod()
    for step in range(a.pers_steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, a.pers_steps, a.pers_lr, warmup=50)
        x0, batch_texts = motion_batch(a, rng, mean, std, scale, texts, shapes)
        ids, mask = encode_captions(a, tok, rng, batch_texts, negative_rng, p=a.mm_caption_dropout)
        loss = diffusion_loss(model, x0, ids, mask, t5, acp, use_motion=True, groups=motion_groups(a))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        ema.update(base)
        if step % 50 == 0 or step == a.pers_steps - 1:
            log(f"personalized step {step}/{a.pers_steps} loss {loss.item():.4f}")
    base.load_state_dict(ema.shadow)
    torch.save({"personalized": base.state_dict()}, os.path.join(a.work, "personalized.pt"))


def kohya_name(module_path: str) -> str:
    """EasyAnimate's LoRA network: 'lora_unet' + '_' + the module path with dots as underscores."""
    return "lora_unet__" + module_path.replace(".", "_")


def stage_lora(a):
    base_sd = load_stage(a, "motion")["base"]
    pers_sd = load_stage(a, "personalized")["personalized"]
    ref = models.make_transformer2d()
    out, worst = {}, 0.0
    rank, alpha = a.lora_rank, a.lora_alpha
    for name, mod in ref.named_modules():
        if not isinstance(mod, torch.nn.Linear):
            continue
        delta = (pers_sd[name + ".weight"] - base_sd[name + ".weight"]).double()
        if delta.abs().max() == 0:
            continue
        u, s, vh = torch.linalg.svd(delta, full_matrices=False)
        r = min(rank, s.numel())
        # W' = W + (alpha / rank) · up @ down
        root = s[:r].sqrt()
        down = (root[:, None] * vh[:r]).float()
        up = (u[:, :r] * root[None, :] * (rank / alpha)).float()
        if r < rank:  # keep the file's rank uniform
            down = torch.cat([down, torch.zeros(rank - r, down.shape[1])])
            up = torch.cat([up, torch.zeros(up.shape[0], rank - r)], 1)
        approx = (alpha / rank) * up.double() @ down.double()
        rel = ((approx - delta).norm() / delta.norm()).item()
        worst = max(worst, rel)
        key = kohya_name(name)
        out[key + ".lora_down.weight"] = down.contiguous()
        out[key + ".lora_up.weight"] = up.contiguous()
        out[key + ".alpha"] = torch.tensor(float(alpha))
        bias_delta = (pers_sd[name + ".bias"] - base_sd[name + ".bias"]).abs().max().item() if name + ".bias" in pers_sd else 0
        if bias_delta > 0:
            log(f"lora: note: {name}.bias differs by {bias_delta:.2e} (a LoRA carries only the weight)")
    torch.save(out, os.path.join(a.work, "lora.pt"))
    log(f"lora: {len(out) // 3} modules, rank {rank}, alpha {alpha}, worst relative residual {worst:.3f}")


def stage_export(a):
    from diffusers import DPMSolverMultistepScheduler
    from safetensors.torch import save_file
    from transformers import T5Tokenizer
    out = a.out
    pix = os.path.join(out, PIXART)
    if os.path.exists(pix):
        shutil.rmtree(pix)
    os.makedirs(pix)
    ck = load_stage(a, "motion")
    base = models.make_transformer2d()
    base.load_state_dict(ck["base"])
    base.save_pretrained(os.path.join(pix, "transformer"), safe_serialization=True)
    vae = models.AutoencoderKL.from_pretrained(os.path.join(a.work, "vae"))
    vae.save_pretrained(os.path.join(pix, "vae"), safe_serialization=True)
    tok = T5Tokenizer.from_pretrained(os.path.join(a.work, "tokenizer"))
    tok.save_pretrained(os.path.join(pix, "tokenizer"))
    t5 = models.make_t5(len(tok))
    t5.load_state_dict(ck["t5"])
    t5.to(torch.bfloat16).save_pretrained(os.path.join(pix, "text_encoder"), safe_serialization=True,
                                          max_shard_size="90KB")
    DPMSolverMultistepScheduler(beta_start=0.0001, beta_end=0.02, beta_schedule="linear", steps_offset=1,
                                prediction_type=PREDICTION).save_pretrained(os.path.join(pix, "scheduler"))
    with open(os.path.join(pix, "model_index.json"), "w") as f:
        json.dump({"_class_name": "PixArtAlphaPipeline", "_diffusers_version": "0.27.2",
                   "scheduler": ["diffusers", "DPMSolverMultistepScheduler"],
                   "text_encoder": ["transformers", "T5EncoderModel"], "tokenizer": ["transformers", "T5Tokenizer"],
                   "transformer": ["diffusers", "Transformer2DModel"], "vae": ["diffusers", "AutoencoderKL"]},
                  f, indent=2)
    save_file({k: v.contiguous() for k, v in ck["motion"].items()}, os.path.join(out, "motion_module.safetensors"),
              metadata={"format": "pt"})
    pers = load_stage(a, "personalized")["personalized"]
    save_file({k: v.contiguous() for k, v in pers.items()}, os.path.join(out, "outline_personalized.safetensors"),
              metadata={"format": "pt"})
    save_file(load_stage(a, "lora"), os.path.join(out, "outline_lora.safetensors"),
              metadata={"ss_network_dim": str(a.lora_rank), "ss_network_alpha": str(float(a.lora_alpha)),
                        "ss_base_model_version": "pixart", "ss_network_module": "easyanimate.utils.lora_utils",
                        "ss_training_comment": "SVD of outline_personalized - base per Linear (tools/train-demo)"})
    write_yaml(os.path.join(out, YAML), PREDICTION)
    with open(os.path.join(out, "grammar.json"), "w") as f:
        json.dump(grammar_json(), f, indent=1)
    log(f"export: {out}")


def write_yaml(path: str, prediction: str) -> None:
    """EasyAnimate's config/easyanimate_video_motion_module_v1.yaml values (the motion module this set was trained
    with, the DDPM betas of its training and its prediction_type), the keys the runner and EasyAnimate's
    predict_t2v.py read (it builds every sampler from noise_scheduler_kwargs)."""
    mm = models.MOTION
    lines = ["transformer_additional_kwargs:", "  patch_3d: false", "  fake_3d: false",
             '  basic_block_type: "motionmodule"', "  time_position_encoding_before_transformer: false",
             '  motion_module_type: "VanillaGrid"', "", "  motion_module_kwargs:",
             f"    num_attention_heads: {mm['num_attention_heads']}",
             f"    num_transformer_block: {mm['num_transformer_block']}",
             "    attention_block_types: [" + ", ".join(f'"{t}"' for t in mm["attention_block_types"]) + "]",
             f"    temporal_position_encoding: {str(mm['temporal_position_encoding']).lower()}",
             f"    temporal_position_encoding_max_len: {mm['temporal_position_encoding_max_len']}",
             f"    temporal_attention_dim_div: {mm['temporal_attention_dim_div']}",
             f"    block_size: {mm['block_size']}", "",
             "noise_scheduler_kwargs:", "  beta_start: 0.0001", "  beta_end: 0.02", '  beta_schedule: "linear"',
             "  steps_offset: 1", f'  prediction_type: "{prediction}"', "", "vae_kwargs:", "  enable_magvit: false", ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))


def grammar_json() -> dict:
    import evaluate
    import judge
    return {
        "template": "a {colour} {shape} moving {direction} on a {background} background",
        "colours": grammar.COLOURS, "backgrounds": grammar.BACKGROUNDS, "shapes": list(grammar.SHAPES),
        "directions": list(grammar.DIRECTIONS),
        # judge.py's palette, in its order (the first of equally near colours wins)
        "palette": [{"name": n, "rgb": list(v)} for n, v in
                    zip(judge.PALETTE_NAMES, list(grammar.COLOURS.values()) + list(grammar.BACKGROUNDS.values()))],
        "skipped": "colour == background (blue on blue, green on green)",
        "held_out": [{"colour": c, "shape": s, "direction": d} for c, s, d in grammar.HELD_OUT],
        "eval_prompts": evaluate.eval_prompts(),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="fixtures/ea-demo")
    p.add_argument("--work", default="/work/demo-work/train", help="dataset and stage checkpoints")
    p.add_argument("--from", dest="start", default="data", choices=STAGES)
    p.add_argument("--to", dest="stop", default="export", choices=STAGES)
    p.add_argument("--init-from", help="an exported set to fine-tune instead of training from scratch: its VAE "
                   "decoder only (the latent space stays), its transformer, T5 and motion module continued")
    p.add_argument("--vae-from", help="an exported set whose VAE to use as it is (the vae stage only encodes the "
                   "data, the decoder stage is skipped)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--clips", type=int, default=1600)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--vae-steps", type=int, default=1500)
    p.add_argument("--vae-batch", type=int, default=8)
    p.add_argument("--vae-lr", type=float, default=2e-3)
    p.add_argument("--vae-shape-gain", type=float, default=9.0, help="extra loss weight on the shape (--init-from)")
    p.add_argument("--decoder-steps", type=int, default=600, help="decoder stage steps (shape-weighted loss)")
    p.add_argument("--decoder-lr", type=float, default=1e-3)
    p.add_argument("--negative-steps", type=float, default=0.1,
                   help="fraction of the diffusion steps whose empty captions are the default negative prompt")
    p.add_argument("--warmup", type=int, default=100, help="learning-rate warm-up steps of dit2d and motion")
    p.add_argument("--dit-steps", type=int, default=2000)
    p.add_argument("--dit-stop-at", type=int, default=0, help="end dit2d at this step, on --dit-steps' schedule "
                   "(what a STOP file did in the committed run; 0: run them all)")
    p.add_argument("--dit-batch", type=int, default=128)
    p.add_argument("--dit-frames", type=int, default=3, help="dit2d: frames drawn from the first N of each clip, "
                   "where the caption's direction says where the shape is (all 8: the word says nothing)")
    p.add_argument("--dit-shape-pairs", type=int, default=0, help="dit2d: each frame drawn in the other shapes "
                   "too, same noise and t (1) or not (0)")
    p.add_argument("--prediction", choices=["epsilon", "v_prediction"], default="v_prediction",
                   help="the transformer's prediction_type (dit2d; the later stages keep dit2d's)")
    p.add_argument("--dit-lr", type=float, default=1e-3)
    p.add_argument("--mm-steps", type=int, default=1500)
    p.add_argument("--mm-stop-at", type=int, default=0, help="end motion at this step, on --mm-steps' schedule")
    p.add_argument("--mm-warmup", type=int, default=0, help="motion's warm-up steps (0: --warmup)")
    p.add_argument("--mm-batch", type=int, default=16)
    p.add_argument("--mm-lr", type=float, default=1e-3)
    p.add_argument("--mm-base-lr-ratio", type=float, default=1.0)
    p.add_argument("--mm-reverse-pairs", type=int, default=1, help="motion: each clip with its partner "
                   "played backwards, same noise and t (1, the default) or not (0)")
    p.add_argument("--mm-shape-pairs", type=int, default=0, help="motion: each clip's path drawn in the other "
                   "shapes too, same noise and t, so the shape word decides where x_t does not (1) or not (0)")
    p.add_argument("--mm-caption-dropout", type=float, default=0.1, help="motion: fraction of empty captions")
    p.add_argument("--mm-train-t5", action="store_true", help="motion: train the T5 encoder too (default frozen "
                   "after dit2d, where direction words carry no signal); F32 from its BF16 weights, EMA, rounded to "
                   "BF16 at the end of the stage")
    p.add_argument("--mm-t5-lr-ratio", type=float, default=1.0, help="motion: T5's lr / --mm-lr (--mm-train-t5)")
    p.add_argument("--mm-t-power", type=float, default=1.0, help="motion: diffusion timesteps drawn as "
                   "1000 · u^(1/P), density ∝ t^(P-1): 1 uniform (default), 2 three quarters above t = 500")
    p.add_argument("--mm-x0-weight", type=float, default=0.0, help="motion: weight each sample's eps MSE by "
                   "clamp(1/SNR, 1, W) (the x0 MSE where 1/W < SNR < 1, t ~ 250-680 for W 100), so the high-noise "
                   "steps, where the eps MSE is tiny but the trajectory is decided, carry weight (0: off)")
    p.add_argument("--mm-edge-weight", type=float, default=0.0, help="motion: extra loss weight on a band around "
                   "each shape's outline (0: off), so squares get their corners")
    p.add_argument("--mm-resume", action="store_true", help="start the motion stage from its own last checkpoint")
    p.add_argument("--latent-sampling", choices=["mean", "sample"], default="mean",
                   help="diffusion stages' x0: the VAE posterior mean or a sample of it (EasyAnimate's)")
    p.add_argument("--min-snr-gamma", type=float, default=5.0, help="Min-SNR-gamma loss weighting (0: off)")
    p.add_argument("--snapshot-every", type=int, default=0,
                   help="dit2d/motion: save the EMA weights every N steps to WORK/<stage>-snapshot.pt")
    p.add_argument("--pers-steps", type=int, default=500)
    p.add_argument("--pers-lr", type=float, default=3e-4)
    p.add_argument("--lora-rank", type=int, default=8)
    p.add_argument("--lora-alpha", type=float, default=8.0)
    a = p.parse_args()
    if a.init_from and os.path.realpath(a.init_from) == os.path.realpath(a.out):
        p.error("--init-from must not be --out (the export replaces it): fine-tune from a copy")
    if a.vae_from and not os.path.isfile(os.path.join(a.vae_from, PIXART, "vae", "config.json")):
        p.error(f"--vae-from {a.vae_from}: no VAE there ({PIXART}/vae/config.json is missing)")
    torch.set_num_threads(a.threads)
    global MIN_SNR_GAMMA
    MIN_SNR_GAMMA = a.min_snr_gamma
    global LATENT_SAMPLING, PREDICTION
    LATENT_SAMPLING = a.latent_sampling
    PREDICTION = a.prediction
    os.makedirs(a.work, exist_ok=True)
    os.makedirs(a.out, exist_ok=True)
    timing_path = os.path.join(a.work, "timings.json")
    timings = json.load(open(timing_path)) if os.path.exists(timing_path) else {}
    for stage in STAGES[STAGES.index(a.start):STAGES.index(a.stop) + 1]:
        log(f"== {stage}")
        t0 = time.time()
        globals()[f"stage_{stage}"](a)
        timings[stage] = round(time.time() - t0, 1)
        log(f"== {stage} took {timings[stage]:.0f} s")
        json.dump(timings, open(timing_path, "w"), indent=1)
    log(f"timings (s): {timings}, total {sum(timings.values()):.0f} s")


if __name__ == "__main__":
    main()
