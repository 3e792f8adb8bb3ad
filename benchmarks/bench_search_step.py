"""One local search step of DFNAS (DSNAS, one sampled path) against one of FedNAS
(MiLeNAS, three passes over the whole DARTS supernet): samples/s and peak memory, measured
side by side in one run, each step type in a fresh subprocess so peak RSS is its own.

With ``--reference PATH`` (a checkout of github.com/chaoyanghe/FedNAS) the public FedNAS
code's own step runs beside ours at every DARTS size: ``Architect.step_v2`` then the
weight step of ``FedNASTrainer.local_search``, on its ``model_search.Network``, exactly as
its trainer builds them (same C, cells, batch, optimizers and layout). ``--profile`` prints
where one of our MiLeNAS steps spends its time and memory (torch.profiler, by operator).

Uses real CIFAR-10 from data/cifar-10-batches-py when present (--data-root), else
CIFAR-shaped random images (step time does not depend on pixel values).

    python benchmarks/bench_search_step.py [--steps 20] [--darts C,cells ...]
        [--reference ../FedNAS] [--order one_train_pass] [--profile]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time

import torch


def _batches(data_root: str, batch: int, n: int):
    from dfnas.errors import DatasetError

    try:
        from dfnas.data import load_dataset

        ds = load_dataset("cifar10", root=data_root)
        x = torch.from_numpy(ds.x_train[: batch * n]).float().div(255)
        y = torch.from_numpy(ds.y_train[: batch * n])
        source = "real CIFAR-10"
    except DatasetError:
        g = torch.Generator().manual_seed(0)
        x, y = torch.rand(batch * n, 3, 32, 32, generator=g), torch.randint(0, 10, (batch * n,))
        source = "CIFAR-shaped random"
    x = x.contiguous(memory_format=torch.channels_last)
    return [
        (x[i * batch : (i + 1) * batch], y[i * batch : (i + 1) * batch]) for i in range(n)
    ], source


def _run(
    kind: str,
    arg: tuple,
    data_root: str,
    batch: int,
    steps: int,
    threads: int,
    out,
    profile: bool = False,
) -> None:
    import resource

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    batches, source = _batches(data_root, batch, steps + 2)
    if kind == "dfnas":
        from dfnas.search.dsnas import dsnas_step, sample_path, score_gradient
        from dfnas.search.shufflenet_supernet import ShuffleSupernet

        net = ShuffleSupernet((3, 32, 32), 10).to(memory_format=torch.channels_last)
        w_opt = torch.optim.SGD(net.weight_parameters(), lr=0.05, momentum=0.9)
        a_opt = torch.optim.Adam([net.alpha], lr=1e-3, betas=(0.5, 0.999))
        gen = torch.Generator().manual_seed(0)

        def step(x, y):
            path = sample_path(net.alpha, gen)
            w_opt.zero_grad(set_to_none=True)
            _, dl_dz = dsnas_step(net, x, y, path, [True] * net.num_layers)
            w_opt.step()
            net.alpha.grad = score_gradient(net.alpha, path, dl_dz)
            a_opt.step()

        label = "DFNAS / DSNAS step, ShuffleNetV2 supernet (8 layers, default CPU space)"
    elif kind == "reference":
        import sys
        from types import SimpleNamespace

        sys.path.insert(0, arg[2])
        from darts.architect import Architect  # the public FedNAS code
        from darts.model_search import Network

        c, cells = arg[:2]
        crit = torch.nn.CrossEntropyLoss()
        net = Network(c, 10, cells, crit, torch.device("cpu")).to(memory_format=torch.channels_last)
        alpha_ids = {id(p) for p in net.arch_parameters()}
        w_opt = torch.optim.SGD(
            [p for p in net.parameters() if id(p) not in alpha_ids],
            lr=0.025,
            momentum=0.9,
            weight_decay=3e-4,
        )
        args = SimpleNamespace(
            momentum=0.9, weight_decay=3e-4, arch_learning_rate=3e-4, arch_weight_decay=1e-3
        )
        architect = Architect(net, crit, args, torch.device("cpu"))

        def step(x, y):  # FedNASTrainer.local_search, one step, validation batch = x
            architect.step_v2(x, y, x, y, 1.0, 1.0)
            w_opt.zero_grad()
            crit(net(x), y).backward()
            torch.nn.utils.clip_grad_norm_(net.arch_parameters(), 5.0)  # sic: its clip
            w_opt.step()

        label = f"public FedNAS code's step (C={c}, {cells} cells)"
    else:
        from dfnas.search.darts_supernet import DartsSearchNet
        from dfnas.search.milenas import milenas_step, milenas_step_one_train_pass

        c, cells, order = arg
        net = DartsSearchNet((3, 32, 32), 10, C=c, layers=cells).to(
            memory_format=torch.channels_last
        )
        w_opt = torch.optim.SGD(net.weight_parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)
        a_opt = torch.optim.Adam(
            net.arch_parameters(), lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3
        )
        milenas = milenas_step if order == "alpha_then_weights" else milenas_step_one_train_pass

        def step(x, y):
            milenas(net, x, y, x, y, w_opt, a_opt, 1.0, 5.0)

        label = f"dfnas MiLeNAS step (C={c}, {cells} cells, {order})"
        if profile:
            from torch.profiler import ProfilerActivity
            from torch.profiler import profile as torch_profile

            step(*batches[0])
            with torch_profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
                step(*batches[1])
            print(label, "profile of one step:")
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=18))
    params = sum(p.numel() for p in net.parameters())
    for x, y in batches[:2]:  # warm-up
        step(x, y)
    t0 = time.perf_counter()
    for x, y in batches[2:]:
        step(x, y)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out.put((label, source, params, steps * batch / seconds, peak))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-root", default="data")
    parser.add_argument("--darts", nargs="+", default=["8,3", "16,5"], help="C,cells pairs")
    parser.add_argument("--reference", default=None, help="path of a FedNAS checkout")
    parser.add_argument(
        "--order",
        nargs="+",
        default=["alpha_then_weights"],
        choices=["alpha_then_weights", "one_train_pass"],
        help="FedNAS step_order(s) to time",
    )
    parser.add_argument("--profile", action="store_true", help="profile one MiLeNAS step")
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    jobs: list[tuple[str, tuple]] = [("dfnas", ())]
    for d in args.darts:
        c, cells = map(int, d.split(","))
        if args.reference:
            jobs.append(("reference", (c, cells, args.reference)))
        jobs += [("fednas", (c, cells, order)) for order in args.order]
    results = []
    for kind, arg in jobs:
        q = ctx.Queue()
        steps = args.steps if kind == "dfnas" or arg[0] * arg[1] <= 24 else max(3, args.steps // 5)
        p = ctx.Process(
            target=_run,
            args=(kind, arg, args.data_root, args.batch, steps, args.threads, q, args.profile),
        )
        p.start()
        results.append(q.get())
        p.join()
    print(f"batch {args.batch}, {args.threads} threads, torch {torch.__version__}")
    print(f"data: {results[0][1]}")
    base, base_mem = results[0][3], results[0][4]
    reference = None
    for (kind, _), (label, _, params, sps, peak) in zip(jobs, results, strict=True):
        print(label)
        print(f"    params {params:,}  {sps:8.2f} samples/s  peak RSS {peak / 2**20:7.0f} MiB")
        print(
            f"    DFNAS speed / this: {base / sps:6.1f}x; memory / DFNAS: {peak / base_mem:5.2f}x"
        )
        if kind == "reference":
            reference = (sps, peak)
        elif kind == "fednas" and reference:
            print(
                f"    vs the public FedNAS step: {sps / reference[0]:5.2f}x its samples/s, "
                f"{peak / reference[1]:5.2f}x its peak RSS"
            )


if __name__ == "__main__":
    main()
