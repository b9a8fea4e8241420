"""What each fast path buys: one UNet training step (forward, backward, AdamW) under fp32, TF32, bf16/fp16 autocast,
channels-last, torch.compile and gradient checkpointing, timed side by side in one run and printed as ratios to the
plain fp32 step. Rounds rotate the order of the variants, so slow drifts of a shared machine hit all of them alike.

    python bench/fast_paths.py                             # the demo UNet (8x8x3 latents, batch 64), CPU or GPU
    python bench/fast_paths.py --preset sd-small           # a wider UNet on 64x64x4 latents with 77x768 context
    python bench/fast_paths.py --compile                   # also torch.compile (minutes of compiling on CPU)

On CUDA the variants stack the way `fit` uses them: 'fp32' turns TF32 off, 'tf32' turns it on, the autocast variants
keep TF32 on for what stays in fp32, 'channels-last' and 'compile' add to bf16 autocast. Peak memory is the CUDA
allocator's maximum on CUDA and `PeakMemory`'s count of tensor storage on CPU, both beyond what exists before the step.
"""
import argparse, dataclasses, platform, statistics, time
import torch
from latent_diffusion.unet import UNet, UNetConfig
from latent_diffusion.forward import default_device
from latent_diffusion.train import autocast_dtype
from unet_vs_diffusers import peak_bytes                 # the same measurement as the diffusers benchmark

def preset_config(name:str) -> tuple:
    "(UNetConfig, latent shape (C, H, W), context shape (tokens, width) or None)"
    if name == 'demo':
        from latent_diffusion.core import LDM, digits_model
        return LDM(digits_model(None)).unet.config, (3, 8, 8), None
    if name == 'sd-small':
        return (UNetConfig(in_channels=4, base_channels=128, channel_mult=(1, 2, 4), num_res_blocks=2, attention_resolutions=(1, 2),
                           num_heads=8, groups=32, context_dim=768, scale_shift_norm=False), (4, 64, 64), (77, 768))
    raise ValueError(f"unknown preset {name!r}: expected 'demo' or 'sd-small'")

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--device', default=None); p.add_argument('--preset', default='demo')
    p.add_argument('--batch', type=int, default=None, help='default: 64 (demo), 16 (sd-small)')
    p.add_argument('--rounds', type=int, default=10); p.add_argument('--compile', action='store_true')
    a = p.parse_args(argv)
    dev = default_device(a.device); cuda = dev.type == 'cuda'
    base, lat, ctx_shape = preset_config(a.preset)
    B = a.batch or (64 if a.preset == 'demo' else 16)
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(B, *lat, generator=g).to(dev); t = torch.randint(0, 1000, (B,), generator=g).to(dev)
    ctx = torch.randn(B, *ctx_shape, generator=g).to(dev) if ctx_shape else None
    amp = autocast_dtype(dev) or torch.bfloat16              # on CPU, bf16 autocast is measured too (it is what 'auto' skips)
    amp_name = {torch.bfloat16: 'bf16', torch.float16: 'fp16'}[amp]
    names = ['fp32'] + (['tf32'] if cuda else []) + [f'{amp_name} autocast', f'{amp_name} + channels-last'] + \
            ([f'{amp_name} + compile'] if a.compile else []) + ['fp32 + checkpointing']

    def make(name):
        torch.manual_seed(0)
        net = UNet(dataclasses.replace(base, gradient_checkpointing='checkpointing' in name)).to(dev).train()
        for q in net.parameters():                            # non-zero everywhere (the last conv starts at zero)
            if q.abs().max() == 0: torch.nn.init.normal_(q, std=0.02)
        x = x0
        if 'channels-last' in name: net, x = net.to(memory_format=torch.channels_last), x0.contiguous(memory_format=torch.channels_last)
        fwd = torch.compile(net) if 'compile' in name else net
        opt = torch.optim.AdamW(net.parameters(), lr=1e-5)
        mixed = name.startswith(amp_name)                      # the bf16/fp16 variants
        tf32 = cuda and name != 'fp32' and 'checkpointing' not in name
        def step():
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
            with torch.autocast(dev.type, dtype=amp, enabled=mixed):
                loss = (fwd(x, t, ctx) if ctx is not None else fwd(x, t)).float().square().mean()
            loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
        return step

    sync = (lambda: torch.cuda.synchronize(dev)) if cuda else (lambda: None)
    steps, warm = {}, {}
    for n in names:
        sync(); t0 = time.perf_counter(); steps[n] = make(n); steps[n](); steps[n](); sync(); warm[n] = time.perf_counter() - t0
    times = {n: [] for n in names}
    for r in range(a.rounds):
        for n in names[r % len(names):] + names[:r % len(names)]:
            sync(); t0 = time.perf_counter(); steps[n](); sync(); times[n].append(time.perf_counter() - t0)
    peak = {}
    for n in names:                                           # the CUDA allocator's peak, or PeakMemory's count on CPU
        ours, alloc = peak_bytes(steps[n], dev); peak[n] = alloc if alloc is not None else ours
    name = torch.cuda.get_device_name(dev) if cuda else f'{platform.machine()}, {torch.get_num_threads()} threads'
    print(f'{dev.type} ({name}), torch {torch.__version__}; training step of the {a.preset} UNet '
          f'({sum(q.numel() for q in UNet(base).parameters()) / 1e6:.1f} M parameters), batch {B}, latents {"x".join(map(str, lat))}, '
          f'{a.rounds} rotating rounds')
    print(f"{'':26s}{'median s':>10s}{'/ fp32':>8s}{'rounds min-max':>16s}{'peak MiB':>10s}{'/ fp32':>8s}{'first 2 steps s':>17s}")
    res = {}
    for n in names:
        q = [u / v for u, v in zip(times[n], times['fp32'])]
        res[n] = dict(median_s=statistics.median(times[n]), time_ratio=statistics.median(q), peak_bytes=peak[n], warmup_s=warm[n])
        print(f'{n:26s}{statistics.median(times[n]):10.4f}{statistics.median(q):8.2f}{f"{min(q):.2f}-{max(q):.2f}":>16s}'
              f'{peak[n] / 2**20:10.0f}{peak[n] / peak["fp32"]:8.2f}{warm[n]:17.1f}')
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    return dict(device=name, preset=a.preset, batch=B, variants=res)

if __name__ == '__main__': main()
