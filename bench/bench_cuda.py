"""PyTorch on the GPU at bench_cuda's cases (same networks as SPEC section 3
and bench/torch_bench.py, same batches), for scripts/gpu-check.sh.

usage: python3 bench/bench_cuda.py fp32|tf32 [--reps R]
  fp32: float32 with TF32 off in cuDNN and matmuls; tf32: TF32 allowed.
  cudnn.benchmark is on (PyTorch's fastest algorithms, its best case).
Prints one JSON object per case and line, like bench_cuda."""
import json
import sys
import time

import torch

sys.path.insert(0, __file__.rsplit('/', 1)[0])
from torch_bench import Net  # noqa: E402  (the same layer structure as wcm's)

precision = sys.argv[1] if len(sys.argv) > 1 else 'fp32'
reps = int(sys.argv[sys.argv.index('--reps') + 1]) if '--reps' in sys.argv else 10
if precision not in ('fp32', 'tf32'):
    sys.exit('usage: bench_cuda.py fp32|tf32 [--reps R]')
torch.backends.cudnn.allow_tf32 = precision == 'tf32'
torch.backends.cuda.matmul.allow_tf32 = precision == 'tf32'
torch.backends.cudnn.benchmark = True
dev = torch.device('cuda')


def best_time(fn):
    fn()
    torch.cuda.synchronize()
    best = float('inf')
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return best


def macs_per_pixel(net):
    return sum(c.kernel_size[0] * c.kernel_size[1] * c.in_channels * c.out_channels for c in net.convs)


def forward_case(rf, cin, cout, batch, size):
    net = Net(rf, cin, cout).to(dev).eval()
    x = torch.rand(batch, cin, size, size, device=dev)

    def run():
        with torch.no_grad():
            net(x)
    return run, net, batch * size * size, 1


def train_case(rf, cin, cout, batch, size, lowpass=False):
    net = Net(rf, cin, cout, lowpass).to(dev).train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = torch.rand(batch, cin, size, size, device=dev)
    y = torch.rand(batch, cout, size, size, device=dev)

    def step():
        opt.zero_grad()
        loss = ((net(x) - y) ** 2).sum() / batch
        loss.backward()
        opt.step()
    return step, net, batch * size * size, 3


CASES = {
    'forward flat RF43 64x160x160': lambda: forward_case(43, 1, 1, 64, 160),
    'train cond RF13 b512 40x40': lambda: train_case(13, 4, 3, 512, 40),
    'train lowpass b512 40x40': lambda: train_case(0, 1, 1, 512, 40, lowpass=True),
}

for name, make in CASES.items():
    fn, net, pixels, passes = make()
    s = best_time(fn)
    tflop = 2.0 * macs_per_pixel(net) * pixels * passes * 1e-12
    print(json.dumps({'impl': 'pytorch', 'case': name, 'precision': precision, 'seconds': round(s, 6),
                      'tflops': round(tflop / s, 2), 'torch': torch.__version__}), flush=True)
    del fn, net
    torch.cuda.empty_cache()
