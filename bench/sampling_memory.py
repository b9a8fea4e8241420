"""PeakMemory against the CUDA allocator in guided sampling, with cuDNN on and off (CUDA only). The sampler is called
once before each measurement, so first-call workspaces (cuBLAS, cuDNN) are not counted. Run:

    python bench/sampling_memory.py
"""
import sys
from pathlib import Path
import torch
sys.path.insert(0, str(Path(__file__).parent))
from latent_diffusion.core import LDM, digits_model
from unet_vs_diffusers import peak_bytes
dev = torch.device('cuda')
torch.manual_seed(0); cfg = digits_model('class'); cfg.scale_factor = 1.0
ldm = LDM(cfg).to(dev).eval()
for n in (100, 400):
    for cudnn in (True, False):
        torch.backends.cudnn.enabled = cudnn
        fn = lambda: ldm.sample(n=n, cond=list(range(10)) * (n // 10), steps=10, guidance=3.0, progress=False)
        fn()
        ours, cuda = peak_bytes(fn, dev)
        print(f'sampling n={n} cudnn={cudnn}: PeakMemory {ours/2**20:.1f} MiB, allocator {cuda/2**20:.1f} MiB, ratio {ours/cuda:.2f}')
torch.backends.cudnn.enabled = True
