"""Draws a benchmark run: a latency CDF per receiver for each driver mode, and the real-time flood results.

    python3 Benchmarks/plot.py DATA.json FILE.png

DATA.json is what signalcore-bench writes with --data (scripts/bench: .build/bench-latest.json). Needs
matplotlib (Debian: python3-matplotlib).
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

FAMILY_STYLE = {"c": "-", "signalcore": "-", "peer": "--"}


def colours(names):
    """One colour per receiver; a SignalCore receiver and its @main twin share one."""
    palette = list(plt.get_cmap("tab10").colors) + list(plt.get_cmap("Dark2").colors)
    base_names = []
    for name in names:
        base = name.split("@")[0]
        if base not in base_names:
            base_names.append(base)
    return {name: palette[base_names.index(name.split("@")[0]) % len(palette)] for name in names}


def style(receiver, floor):
    if receiver["name"] == floor:
        return dict(linestyle="-", linewidth=2.6, color="black")
    if receiver["name"].endswith("@main"):
        return dict(linestyle=":", linewidth=1.8)
    return dict(linestyle=FAMILY_STYLE.get(receiver["family"], "-"), linewidth=1.5)


def cdf_panel(ax, mode, receivers, floor, colour):
    lowest, highest = None, None
    for receiver in receivers:
        samples = mode["latency_ns"].get(receiver["name"])
        if not samples:
            continue
        values = sorted(x / 1000 for x in samples)
        n = len(values)
        fractions = [(i + 1) / n for i in range(n)]
        kwargs = dict(color=colour[receiver["name"]])
        kwargs.update(style(receiver, floor))
        p50 = values[n // 2]
        ax.step(values, fractions, where="post", label=f"{receiver['name']} (p50 {p50:.1f})", **kwargs)
        low, high = values[0], values[min(n - 1, int(n * 0.99))]
        lowest = low if lowest is None else min(lowest, low)
        highest = high if highest is None else max(highest, high)
    ax.set_xscale("log")
    if lowest is not None:
        ax.set_xlim(max(lowest * 0.8, 0.5), highest * 2)  # the tails beyond every p99 are in the report
    ax.set_ylim(0, 1.0)
    ax.axhline(0.5, color="grey", linewidth=0.5)
    ax.axhline(0.99, color="grey", linewidth=0.5)
    ax.set_xlabel("latency, sigqueue → user code sees it (µs, log scale)")
    ax.set_ylabel("fraction of pings")
    ax.set_title(f"Latency CDF, {mode['title']}")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=7, ncol=2, loc="lower right")


def flood_panel(ax, modes, receivers, colour):
    names = [r["name"] for r in receivers if any(r["name"] in m["flood"] for m in modes)]
    height = 0.8 / max(1, len(modes))
    hatches = ["", "//", "xx"]
    for i, mode in enumerate(modes):
        ys = [k + i * height for k in range(len(names))]
        rates, labels = [], []
        for name in names:
            result = mode["flood"].get(name)
            if result is None:
                rates.append(0)
                labels.append("no RT signals")
                continue
            rate = (result["rt_per_second"] or 0) / 1000
            rates.append(rate)
            cpu = result["cpu_ns_per_signal"]
            cpu_text = f"{cpu / 1000:.2f} µs CPU" if cpu is not None else "CPU n/a"
            unordered = result["rt_unordered"]
            order_text = "" if unordered is None else f", {unordered} unordered"
            labels.append(f"{rate:.0f} k/s, lost {result['rt_lost']}{order_text}, {cpu_text}")
        ax.barh(ys, rates, height=height, color=[colour[n] for n in names], hatch=hatches[i % len(hatches)],
                edgecolor="black", linewidth=0.4, label=mode["title"])
        for y, rate, text in zip(ys, rates, labels):
            ax.text(rate, y, " " + text, va="center", fontsize=6)
    ax.set_yticks([k + height * (len(modes) - 1) / 2 for k in range(len(names))])
    ax.set_yticklabels(names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("real-time flood: deliveries user code saw per second (thousands)")
    ax.set_title("Real-time flood with defaults (bars: throughput; text: lost values, order, CPU per signal)")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(True, axis="x", alpha=0.25)
    right = max([((m["flood"].get(n) or {}).get("rt_per_second") or 0) / 1000 for m in modes for n in names] + [1])
    ax.set_xlim(0, right * 1.6)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: plot.py DATA.json FILE.png")
    with open(sys.argv[1]) as f:
        data = json.load(f)
    receivers = data["receivers"]
    modes = data["modes"]
    colour = colours([r["name"] for r in receivers])
    rows = len(modes) + 1
    fig, axes = plt.subplots(rows, 1, figsize=(13, 6.5 * rows), squeeze=False)
    for ax, mode in zip(axes[:, 0], modes):
        cdf_panel(ax, mode, receivers, data["floor"], colour)
    flood_panel(axes[-1, 0], modes, receivers, colour)
    fig.suptitle(data["title"], fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.985))
    fig.savefig(sys.argv[2], dpi=110)


if __name__ == "__main__":
    main()
