"""Our UNet against diffusers' UNet2DConditionModel built from the same configuration (channels, levels, attention,
context): inference forward time, training-step time and peak memory, printed as ours/diffusers ratios measured side
by side in one run. diffusers builds its model from the config with random weights: nothing is downloaded.

    pip install -e ".[bench]"
    python bench/unet_vs_diffusers.py                     # CPU, or the GPU when there is one
    python bench/unet_vs_diffusers.py --device cuda --batch 16 --size 64

Both models run in the same precision (bf16/fp16 autocast on CUDA as the training loop chooses it, fp32 on CPU) with
PyTorch's scaled_dot_product_attention. Times are medians of --reps paired runs after warm-up: in each pair both models
run back to back, the order alternating, and the spread of the per-pair ratios shows how far the machine's noise reaches.
Peak memory is torch.cuda.max_memory_allocated on CUDA and latent_diffusion.perf.PeakMemory's count of tensor storage on
CPU (what the pass or step allocates, beyond the weights and optimizer state made before it).
"""
import argparse, json, platform, statistics, sys, time
import torch
from latent_diffusion.unet import UNet, UNetConfig
from latent_diffusion.forward import default_device
from latent_diffusion.train import autocast_dtype
from latent_diffusion.evaluation import train_step_fn
from latent_diffusion.perf import PeakMemory

def build(width:int, context_dim:int, heads:int, device):
    "The same SD-style UNet twice: 3 levels (1, 2, 4) x width, 2 ResBlocks per level, cross-attention on the first two levels."
    ours = UNet(UNetConfig(in_channels=4, base_channels=width, channel_mult=(1, 2, 4), num_res_blocks=2, attention_resolutions=(1, 2),
                           num_heads=heads, groups=32, context_dim=context_dim, scale_shift_norm=False))   # additive t, as SD
    from diffusers import UNet2DConditionModel
    theirs = UNet2DConditionModel(sample_size=32, in_channels=4, out_channels=4, block_out_channels=(width, 2 * width, 4 * width),
                                  layers_per_block=2, norm_num_groups=32, cross_attention_dim=context_dim,
                                  attention_head_dim=heads,   # diffusers reads this legacy argument as the number of heads
                                  down_block_types=('CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'),
                                  up_block_types=('UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'))
    for m in (ours, theirs):                                   # non-zero outputs everywhere (ours zero-initialises its last conv)
        torch.manual_seed(0)
        for p in m.parameters():
            if p.abs().max() == 0: torch.nn.init.normal_(p, std=0.02)
    return ours.to(device), theirs.to(device)

def peak_bytes(fn, device) -> tuple:
    "Peak memory that `fn()` allocates beyond what exists before it: (PeakMemory's count on `device`, the CUDA allocator's or None)."
    cuda = device.type == 'cuda'
    if cuda: torch.cuda.synchronize(device); torch.cuda.reset_peak_memory_stats(device); base = torch.cuda.memory_allocated(device)
    with PeakMemory() as pm: fn()
    if cuda: torch.cuda.synchronize(device)
    ours = sum(v for d, v in pm.peak.items() if d.startswith(device.type))   # this device's storage ('cuda:0' or 'cpu')
    return ours, (torch.cuda.max_memory_allocated(device) - base) if cuda else None

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--device', default=None); p.add_argument('--batch', type=int, default=8); p.add_argument('--size', type=int, default=32)
    p.add_argument('--width', type=int, default=64); p.add_argument('--context', type=int, default=128); p.add_argument('--tokens', type=int, default=16)
    p.add_argument('--reps', type=int, default=8); p.add_argument('--json', action='store_true', help='print the results as JSON too')
    a = p.parse_args(argv)
    device = default_device(a.device)
    ours, theirs = build(a.width, a.context, 4, device)
    x = torch.randn(a.batch, 4, a.size, a.size, device=device)
    t = torch.randint(0, 1000, (a.batch,), device=device)
    ctx = torch.randn(a.batch, a.tokens, a.context, device=device)
    amp = autocast_dtype(device)
    def under_amp(fn):
        def run():
            with torch.autocast(device.type, dtype=amp, enabled=amp is not None): return fn()
        return run
    res = {name: dict(params=sum(q.numel() for q in m.parameters())) for name, m in (('ours', ours), ('diffusers', theirs))}
    models = dict(ours=ours, diffusers=theirs)              # both take (x, t, context) positionally
    def forward(model):
        model.eval()
        def run():
            with torch.no_grad(): return model(x, t, ctx)
        return under_amp(run)
    steps = {k: under_amp(train_step_fn(m.train(), x, t, ctx, lr=1e-5)) for k, m in models.items()}
    def train(k):
        models[k].train(); return steps[k]
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == 'cuda' else (lambda: None)
    ratios = {}
    for key, make in (('forward_s', lambda k: forward(models[k])), ('train_step_s', train)):
        fns = {k: make(k) for k in models}
        for k in models: fns[k](); fns[k]()                 # warm-up
        times = {k: [] for k in models}
        for r in range(a.reps):                             # paired reps, the order alternating: slow drifts of a shared
            for k in (('ours', 'diffusers') if r % 2 == 0 else ('diffusers', 'ours')):   # machine hit both sides alike
                sync(); t0 = time.perf_counter(); fns[k](); sync(); times[k].append(time.perf_counter() - t0)
        for k in models: res[k][key] = statistics.median(times[k])
        ratios[key] = sorted(o / d for o, d in zip(times['ours'], times['diffusers']))   # one ratio per pair
    for k in models:                                        # peak memory: the CUDA allocator's counter, or our count on CPU
        for key, make in (('forward_peak_mib', lambda k: forward(models[k])), ('train_peak_mib', train)):
            ours, cuda = peak_bytes(make(k), device)        # weights and optimizer state made before don't count
            res[k][key] = (cuda if cuda is not None else ours) / 2 ** 20
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else f'{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads'
    print(f"device: {device.type} ({name}); torch {torch.__version__}; batch {a.batch}, latents {a.size}x{a.size}x4, width {a.width}, "
          f"context {a.tokens}x{a.context}, precision {amp or torch.float32}; {a.reps} paired reps")
    print(f"{'':18s}{'ours':>12s}{'diffusers':>12s}{'ours/diffusers':>16s}{'per-pair ratios (min, quartiles, max)':>40s}")
    print(f"{'':18s}{'':>12s}{'':>12s}{'(of medians)':>16s}")
    for key, unit in (('params', ''), ('forward_s', 's'), ('train_step_s', 's'), ('forward_peak_mib', 'MiB'), ('train_peak_mib', 'MiB')):
        o, d = res['ours'][key], res['diffusers'][key]
        fmt = (lambda v: f'{v / 1e6:.2f} M') if key == 'params' else (lambda v: f'{v:.4f} {unit}' if unit == 's' else f'{v:.0f} {unit}')
        spread = ''
        if key in ratios:
            q = ratios[key]
            quart = statistics.quantiles(q, n=4, method='inclusive') if len(q) > 1 else q * 3
            spread = ', '.join(f'{v:.2f}' for v in (q[0], *quart, q[-1]))
            res.setdefault('ratios', {})[key] = q
        print(f'{key:18s}{fmt(o):>12s}{fmt(d):>12s}{o / d:16.2f}{spread:>40s}')
    if a.json: print(json.dumps(dict(device=name, **res)))
    return res

if __name__ == '__main__': main()
