"""PyTorch timings of the same networks as bench_net (same shapes, same
layer structure as docs/model.md §3), for the ratio column.
Usage: python3 bench/torch_bench.py THREADS          -> one JSON object {case_name: seconds}
       python3 bench/torch_bench.py THREADS --serve  -> reads case names, one per line, and
         answers each with its best time in seconds (or "nan"), one line each: bench_net
         alternates these with its own measurements so both see the same machine."""
import json, math, sys, time
import torch
import torch.nn as nn



class BiasFreeBN(nn.Module):
    """Scale-only batch norm: x / sd * gamma (no mean subtraction, no bias)."""
    def __init__(self, c):
        super().__init__()
        self.gammas = nn.Parameter(torch.ones(1, c, 1, 1))
        self.register_buffer('running_sd', torch.ones(1, c, 1, 1))

    def forward(self, x):
        if self.training:
            sd = torch.sqrt(x.var(dim=(0, 2, 3), keepdim=True, unbiased=False) + 1e-5)
            with torch.no_grad():
                self.running_sd.mul_(0.9).add_(0.1 * sd)
            return x / sd * self.gammas
        return x / self.running_sd * self.gammas


def kernels(rf, lowpass):
    if lowpass:
        return [3] * 20
    r = 8 if rf == 9 else rf
    p = 20 / ((r - 1) / 2 - 1)
    return [3] + [3 if math.fmod(l, p) == 0 else 1 for l in range(1, 20)] + [3]


class Net(nn.Module):
    def __init__(self, rf, cin, cout, lowpass=False):
        super().__init__()
        ks = kernels(rf, lowpass)
        n = len(ks)
        self.convs = nn.ModuleList(
            nn.Conv2d(cin if i == 0 else 64, cout if i == n - 1 else 64, k, padding=k // 2, bias=False)
            for i, k in enumerate(ks))
        self.bns = nn.ModuleList(BiasFreeBN(64) for _ in range(n - 2))

    def forward(self, x):
        x = self.convs[0](x)
        for conv, bn in zip(self.convs[1:-1], self.bns):
            x = torch.relu(bn(conv(x)))
        return self.convs[-1](x)


def best_time(fn, reps):
    fn()
    best = float('inf')
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def forward_case(rf, cin, cout, size, lowpass=False):
    net = Net(rf, cin, cout, lowpass).eval()
    x = torch.rand(1, cin, size, size)

    def run():
        with torch.no_grad():
            net(x)
    return run, 5


def train_case(rf, cin, cout, batch, size, lowpass=False):
    net = Net(rf, cin, cout, lowpass).train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = torch.rand(batch, cin, size, size)
    y = torch.rand(batch, cout, size, size)

    def step():
        opt.zero_grad()
        loss = ((net(x) - y) ** 2).sum() / batch
        loss.backward()
        opt.step()
    return step, 4


CASES = {
    'forward flat RF43 160x160': lambda: forward_case(43, 1, 1, 160),
    'forward flat RF13 160x160': lambda: forward_case(13, 1, 1, 160),
    'forward cond RF13 160x160': lambda: forward_case(13, 4, 3, 160),
    'forward lowpass 40x40': lambda: forward_case(0, 1, 1, 40, lowpass=True),
    'forward flat RF43 320x320': lambda: forward_case(43, 1, 1, 320),
    'train flat RF43 b16 40x40': lambda: train_case(43, 1, 1, 16, 40),
    'train cond RF13 b16 40x40': lambda: train_case(13, 4, 3, 16, 40),
    'train lowpass b64 40x40': lambda: train_case(0, 1, 1, 64, 40, lowpass=True),
}

if __name__ == '__main__':  # (bench_cuda.py imports Net)
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)  # random nets must not be timed on denormals
    if len(sys.argv) > 2 and sys.argv[2] == '--serve':
        built = {}  # networks are built once and timed again in later rounds
        for line in sys.stdin:
            name = line.strip()
            if name not in CASES:
                print('nan', flush=True)
                continue
            if name not in built:
                built[name] = CASES[name]()
            fn, reps = built[name]
            print(repr(best_time(fn, reps)), flush=True)
    else:
        print(json.dumps({name: best_time(*make()) for name, make in CASES.items()}))
