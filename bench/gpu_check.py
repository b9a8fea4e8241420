"""The GPU check: one command, a few minutes. On a CUDA machine it
1. prints the GPU, PyTorch and CUDA versions;
2. checks the mixed-precision path: the LDM loss under autocast (bf16 where supported, else fp16) is finite and within
   2% of fp32 on the same batch and noise, and 30 mixed-precision training steps give finite, falling losses (on CUDA
   both bf16 and fp16 with the gradient scaler), and the autoencoder's bf16 training follows its fp32 training;
3. checks that fused attention (scaled_dot_product_attention) matches attention written out, under autocast;
4. prints the benchmarks: our UNet against diffusers' (bench/unet_vs_diffusers.py; on CUDA also at SD's 64x64 latent size),
   what each fast path buys (bench/fast_paths.py) and LDM-4 against pixel-space LDM-1;
5. compares latent_diffusion.perf.PeakMemory's count of tensor storage (what the performance chapter's T4 table rests on)
   with torch.cuda.max_memory_allocated for a training step and for sampling, and counts SD v1 sampling at 512x512;
6. runs the test suite (pytest) on the GPU, unless --no-tests (--workers N spreads it over N processes with pytest-xdist).
Results go to stdout and to --out (JSON). It also runs on CPU, where step 2 checks fp32 only.

    pip install -e ".[dev,bench]" && python bench/gpu_check.py --out gpu_check.json
"""
import argparse, json, platform, subprocess, sys, time
from pathlib import Path
import torch
from latent_diffusion.forward import default_device
from latent_diffusion.train import autocast_dtype, TrainConfig
from latent_diffusion.core import LDM, digits_model
from latent_diffusion.attention import attention
from latent_diffusion.evaluation import time_it, train_step_fn

def main(argv=None):
    p = argparse.ArgumentParser(description='GPU check: mixed precision, fused attention, benchmarks, tests')
    p.add_argument('--out', default='gpu_check.json'); p.add_argument('--no-tests', action='store_true')
    p.add_argument('--workers', type=int, default=0, help='run the tests in this many processes (needs pytest-xdist)')
    a = p.parse_args(argv)
    dev = default_device()
    res = dict(device=torch.cuda.get_device_name(dev) if dev.type == 'cuda' else f'cpu ({platform.machine()}, {torch.get_num_threads()} threads)',
               torch=torch.__version__, cuda=torch.version.cuda)
    print('==', res)
    amp = autocast_dtype(dev)
    res['amp_dtype'] = str(amp)
    # 2. mixed precision against fp32
    torch.manual_seed(0)
    cfg = digits_model('class'); cfg.scale_factor = 1.0
    ldm = LDM(cfg).to(dev)
    for q in ldm.eps_model.parameters():
        if q.abs().max() == 0: torch.nn.init.normal_(q, std=0.02)
    z0 = torch.randn(32, 3, 8, 8, device=dev); y = torch.arange(32, device=dev) % 10
    t = torch.randint(1, 1001, (32,), device=dev); noise = torch.randn_like(z0)
    with torch.no_grad():
        l32 = ldm.loss(z0, y, t=t, noise=noise).item()
        with torch.autocast(dev.type, dtype=amp, enabled=amp is not None): lmp = ldm.loss(z0, y, t=t, noise=noise).float().item()
    res['loss_fp32'], res['loss_amp'] = l32, lmp
    ok = bool(torch.isfinite(torch.tensor(lmp))) and abs(lmp - l32) <= 0.02 * abs(l32)
    print(f'loss fp32 {l32:.5f}, {amp or "fp32"} {lmp:.5f}: relative difference {abs(lmp - l32) / abs(l32):.2e} (tolerance 2e-2) -> {"ok" if ok else "FAIL"}')
    class Latents(torch.utils.data.Dataset):
        def __len__(self): return 256
        def __getitem__(self, i): return torch.randn(3, 8, 8, generator=torch.Generator().manual_seed(i)), i % 10
    from latent_diffusion.train import fit
    hist = fit(ldm.eps_model, ldm._ldm_loss_fn(), Latents(), TrainConfig(steps=30, batch_size=32, lr=1e-3, warmup=5, ckpt_every=1000),
               device=dev, progress=False)['history']['loss']
    finite = all(map(lambda v: v == v and abs(v) < float('inf'), hist))
    res['train_losses'] = hist
    print(f'30 training steps ({amp or "fp32"}): finite {finite}, loss {sum(hist[:5]) / 5:.4f} -> {sum(hist[-5:]) / 5:.4f}')
    ok = ok and finite
    if dev.type == 'cuda':                                  # the fp16 path (GPUs without bf16): autocast plus the gradient scaler
        h16 = fit(ldm.eps_model, ldm._ldm_loss_fn(), Latents(), TrainConfig(steps=30, batch_size=32, lr=1e-3, warmup=5, ckpt_every=1000,
                  mixed_precision='fp16'), device=dev, progress=False)['history']['loss']
        f16 = all(map(lambda v: v == v and abs(v) < float('inf'), h16))
        res['train_losses_fp16'] = h16
        print(f'30 more training steps (fp16 + GradScaler): finite {f16}, loss {sum(h16[:5]) / 5:.4f} -> {sum(h16[-5:]) / 5:.4f}')
        ok = ok and f16
        # the first stage: bf16 autocast where the GPU has it natively ('auto'), against fp32, 60 steps with the discriminator on from step 30
        from latent_diffusion.autoencoder import Autoencoder, AutoencoderTrainConfig, train_autoencoder
        from latent_diffusion.data import Shapes
        recs = {}
        for mp in ('no', 'auto'):
            torch.manual_seed(0); ae = Autoencoder(in_channels=1, base_channels=32, channel_mult=(1, 2, 2), z_channels=3, groups=8)
            logs = train_autoencoder(ae, Shapes(n=256, size=32), AutoencoderTrainConfig(steps=60, batch_size=32, lr=5e-4, disc_start=30,
                                     mixed_precision=mp), device=dev, disc_channels=32, disc_layers=2, progress=False)['logs']
            recs[mp] = [v for _, v in logs['rec']]
        last = {mp: sum(r[-10:]) / 10 for mp, r in recs.items()}
        ae_ok = all(v == v and abs(v) < float('inf') for v in recs['auto']) and abs(last['auto'] - last['no']) <= 0.1 * last['no']
        res['autoencoder_rec_last10'] = last
        print(f"autoencoder, 60 steps: L_rec over the last 10 {last['no']:.4f} in fp32, {last['auto']:.4f} with mixed_precision='auto' "
              f"({autocast_dtype(dev) if autocast_dtype(dev) == torch.bfloat16 else 'fp32: no native bf16'}), tolerance 10% -> {'ok' if ae_ok else 'FAIL'}")
        ok = ok and ae_ok
    # 3. fused attention
    q, k, v = (torch.randn(4, 4, 64, 32, device=dev) for _ in range(3))
    with torch.autocast(dev.type, dtype=amp, enabled=amp is not None):
        fused = torch.nn.functional.scaled_dot_product_attention(q, k, v).float()
    by_hand = attention(q.float(), k.float(), v.float())
    err = (fused - by_hand).abs().max().item()
    res['attention_max_abs_err'] = err
    att_ok = err < (2e-2 if amp is not None else 1e-4)
    print(f'fused attention vs written out: max |difference| {err:.2e} -> {"ok" if att_ok else "FAIL"}')
    ok = ok and att_ok
    # 4. benchmarks
    sys.path.insert(0, str(Path(__file__).parent))
    import unet_vs_diffusers
    try:
        res['unet_vs_diffusers'] = unet_vs_diffusers.main(['--batch', '16' if dev.type == 'cuda' else '4', '--reps', '5' if dev.type == 'cuda' else '2'])
        if dev.type == 'cuda':                              # and at a size where the GPU, not Python, sets the pace: SD's 64x64 latents
            res['unet_vs_diffusers_large'] = unet_vs_diffusers.main(['--batch', '32', '--size', '64', '--width', '128', '--context', '768',
                                                                     '--tokens', '77', '--reps', '10'])
    except ImportError as e: print(f'unet_vs_diffusers skipped: {e} (pip install -e ".[bench]")')
    import fast_paths                                       # what each fast path buys, as ratios to the fp32 step
    res['fast_paths_demo'] = fast_paths.main(['--rounds', '10' if dev.type == 'cuda' else '3'])
    if dev.type == 'cuda': res['fast_paths_sd_small'] = fast_paths.main(['--preset', 'sd-small', '--compile', '--rounds', '10'])
    import copy
    from latent_diffusion.unet import UNet
    pix = copy.deepcopy(ldm.unet.config); pix.in_channels = pix.out_channels = 1; pix.context_dim = None
    lat = copy.deepcopy(ldm.unet.config); lat.context_dim = None
    u1, u4 = UNet(pix).to(dev), UNet(lat).to(dev)
    B = 1024 if dev.type == 'cuda' else 64                 # on a GPU a small batch measures kernel launches, not the UNet's work
    tb = torch.randint(0, 1000, (B,), device=dev)
    def amp_step(step):
        def run():
            with torch.autocast(dev.type, dtype=amp, enabled=amp is not None): step()
        return run
    s1 = time_it(amp_step(train_step_fn(u1, torch.randn(B, 1, 32, 32, device=dev), tb)), reps=5, device=dev)
    s4 = time_it(amp_step(train_step_fn(u4, torch.randn(B, 3, 8, 8, device=dev), tb)), reps=5, device=dev)
    res['train_step_ldm1_s'], res['train_step_ldm4_s'] = s1, s4
    print(f'training step, batch {B}: LDM-1 {s1:.4f} s, LDM-4 {s4:.4f} s -> LDM-4/LDM-1 throughput {s1 / s4:.2f}x (paper: 2.9x)')
    # 5. our memory count against the CUDA allocator's
    from latent_diffusion.perf import sd_v1_memory, T4_BUDGET
    B = 64; tb = tb[:B]
    step = amp_step(train_step_fn(u4, torch.randn(B, 3, 8, 8, device=dev), tb)); step()
    ldm.eval()
    for what, fn in (('LDM-4 UNet training step, batch 64', step),
                     ('100 guided samples, 10 DDIM steps', lambda: ldm.sample(n=100, cond=list(range(10)) * 10, steps=10, guidance=3.0, progress=False))):
        ours, cuda = unet_vs_diffusers.peak_bytes(fn, dev)
        res[f'memory {what}'] = dict(ours=ours, cuda=cuda)
        print(f'peak memory, {what}: PeakMemory {ours / 2**20:.1f} MiB' + (f', CUDA allocator {cuda / 2**20:.1f} MiB (ratio {ours / cuda:.2f})' if cuda else ''))
    sd = sd_v1_memory()
    res['sd_v1_sampling_bytes'] = sd
    print(f"SD v1 sampling at 512x512 in fp16 (counted on fake tensors): {sd['sample'] / 2**30:.2f} GiB, T4 budget {T4_BUDGET / 2**30:.1f} GiB")
    # 6. the tests
    if not a.no_tests:
        import importlib.util
        if a.workers and importlib.util.find_spec('xdist') is None:
            print('--workers needs pytest-xdist (pip install pytest-xdist): running the tests in one process'); a.workers = 0
        t0 = time.time()
        r = subprocess.run([sys.executable, '-m', 'pytest', '-q', '--durations=0'] + (['-n', str(a.workers)] if a.workers else []),
                           cwd=Path(__file__).parent.parent)
        res['pytest_returncode'], res['pytest_minutes'] = r.returncode, round((time.time() - t0) / 60, 2)
        ok = ok and r.returncode == 0
    res['ok'] = ok
    Path(a.out).write_text(json.dumps(res, indent=2))
    print(f"== {'all checks passed' if ok else 'SOME CHECKS FAILED'}; wrote {a.out}")
    return 0 if ok else 1

if __name__ == '__main__': sys.exit(main())
