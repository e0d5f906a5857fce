"""The Python bench: nwebsocket-rs against websocket-client, the `websockets` sync client,
websocket-rs (the other PyO3 client, its sync client), the original nwebsocket 1.0 and picows
(asyncio, in its own loop), in one run against one local server (bench/echo-server, Rust, so
that the server is never the bottleneck).

    python bench/bench.py            # from python/; prints a Markdown table
    BENCH_ROUNDS=7 python bench/bench.py   # more rounds (default 5)

It makes venvs under bench/ (git-ignored): .venv-bench (this package, installed from ../,
plus websocket-client and websockets), .venv-picows, .venv-websocket-rs (websocket-rs 0.7.x
needs Python 3.12 or later: run the bench with such an interpreter, or it is left out) and
.venv-seed (nwebsocket==1.0.0, which has the same import name). Not run by CI. Every client runs in a process of its own, one
after the other, with the server.
"""

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE = os.path.dirname(HERE)
SERVER = os.path.join(HERE, "echo-server")

OURS = ["nwebsocket-rs, recv()", "nwebsocket-rs, callbacks"]
OTHERS = ["websocket-client", "websockets (sync)"]
SEED = ["nwebsocket 1.0, callbacks"]
REFERENCE = ["picows (asyncio)"]
WEBSOCKET_RS = ["websocket-rs (sync)"]


def venv(name, packages, interpreter=sys.executable):
    path = os.path.join(HERE, name)
    python = os.path.join(path, "bin", "python")
    if not os.path.exists(python):
        subprocess.run([interpreter, "-m", "venv", path], check=True)
        subprocess.run([python, "-m", "pip", "install", "--quiet", *packages], check=True)
    return python


def optional_venv(name, packages, interpreter=sys.executable):
    try:
        return venv(name, packages, interpreter)
    except subprocess.CalledProcessError:
        shutil.rmtree(os.path.join(HERE, name), ignore_errors=True)
        return None


def machine():
    model = "unknown CPU"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return f"{os.cpu_count()} vCPU, {model}, Linux {platform.release()}, Python {platform.python_version()}"


ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))


def summary(name, results):
    """Medians of the speeds, the worst of the delivery counts."""
    median = lambda key: statistics.median(r[key] for r in results)  # noqa: E731
    bursts = [r["burst_in_order"] for r in results if r["burst_in_order"] is not None]

    def median_range(key):
        values = [r[key] for r in results if r.get(key) is not None]
        if not values:
            return None
        return statistics.median(values), min(values), max(values)

    return {
        "connect_ms": median_range("connect_ms"),
        "echo_1mib_ms": median_range("echo_1mib_ms"),
        "library": name,
        "rounds": len(results),
        "rtt_p50_us": median("rtt_p50_us"),
        "rtt_p50_range": (min(r["rtt_p50_us"] for r in results), max(r["rtt_p50_us"] for r in results)),
        "rtt_p99_us": median("rtt_p99_us"),
        "in_per_s": median("in_per_s"),
        "out_per_s": median("out_per_s"),
        "sent": results[0]["sent"],
        "in_received": min(r["in_received"] for r in results),
        "out_received": min(r["out_received"] for r in results),
        "rtt_samples": min(r["rtt_samples"] for r in results),
        "burst_in_order": min(bursts) if bursts else None,
    }


def main():
    ours = venv(".venv-bench", [PACKAGE, "websocket-client", "websockets"])
    # Always this checkout's code, not what the venv got the first time.
    subprocess.run(
        [ours, "-m", "pip", "install", "--quiet", "--force-reinstall", "--no-deps", PACKAGE],
        check=True,
    )
    picows = optional_venv(".venv-picows", ["picows"])
    # nwebsocket 1.0's curio does not import on Python 3.12 and later: SEED_PYTHON may name
    # an older interpreter for it.
    seed = optional_venv(
        ".venv-seed", ["nwebsocket==1.0.0"], os.environ.get("SEED_PYTHON", sys.executable)
    )
    websocket_rs = optional_venv(".venv-websocket-rs", ["websocket-rs>=0.7,<0.8"])
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=SERVER, check=True)
    binary = os.path.join(SERVER, "target", "release", "bench-echo-server")
    wakeup = os.path.join(SERVER, "target", "release", "wakeup")
    load = os.getloadavg()[0]
    wakeups = []
    server = subprocess.Popen([binary], stdout=subprocess.PIPE, text=True)
    try:
        base = f"ws://127.0.0.1:{server.stdout.readline().strip()}"
        runs = [(name, ours) for name in OURS + OTHERS]
        runs += [(name, seed) for name in SEED if seed]
        # picows needs only itself; its venv sees this bench's clients.py like the others.
        runs += [(name, picows) for name in REFERENCE if picows]
        runs += [(name, websocket_rs) for name in WEBSOCKET_RS if websocket_rs]
        rounds = {name: [] for name, _ in runs}
        # Rounds, each client once per round, so that a burst of load from elsewhere on the
        # machine hits every client alike; the table has each figure's median over the rounds.
        for _ in range(ROUNDS):
            # What waking a parked thread costs right now (bench/echo-server/src/bin/wakeup.rs).
            woke = subprocess.run([wakeup], capture_output=True, text=True, check=True, timeout=60)
            wakeups.append(json.loads(woke.stdout))
            for name, python in runs:
                done = subprocess.run(
                    [python, "-W", "ignore", os.path.join(HERE, "clients.py"), name, base],
                    capture_output=True,
                    text=True,
                    timeout=600,
                )
                if done.returncode != 0:
                    print(f"{name}: failed\n{done.stderr}", file=sys.stderr)
                    continue
                rounds[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
        results = [summary(name, runs_of) for name, runs_of in rounds.items() if runs_of]
    finally:
        server.kill()
        server.wait()

    print(f"Machine: {machine()}; load average at the start {load:.2f}, at the end {os.getloadavg()[0]:.2f}.")
    print(f"Messages of 32 bytes of text; server: bench/echo-server; medians of {ROUNDS} rounds.")
    wake50 = statistics.median(w["wakeup_p50_us"] for w in wakeups)
    wake99 = statistics.median(w["wakeup_p99_us"] for w in wakeups)
    print(f"Waking a parked thread (bench wakeup): p50 {wake50:.0f} µs, p99 {wake99:.0f} µs.\n")
    print(
        "| client | RTT p50 (µs) | RTT p99 (µs) | inbound msg/s | outbound msg/s "
        "| 1 MiB echo (ms) | connect+close (ms) | burst of 1,000 echoed in order | delivered |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in results:
        delivered = f"in {r['in_received']:,}/{r['sent']:,}, out {r['out_received']:,}/{r['sent']:,}"
        if r["rtt_samples"] < 5000:
            delivered += f"; RTT {r['rtt_samples']:,}/5,000 echoes (then one was lost)"
        print(
            f"| {r['library']} | {r['rtt_p50_us']:.0f} | {r['rtt_p99_us']:.0f} "
            f"| {r['in_per_s']:,.0f} | {r['out_per_s']:,.0f} "
            f"| {shown(r['echo_1mib_ms'], 2)} | {shown(r['connect_ms'], 3)} "
            f"| {'n/a' if r['burst_in_order'] is None else format(r['burst_in_order'], ',')} "
            f"| {delivered} |"
        )
    print("\nSpread over the rounds, lowest to highest: ")
    for r in results:
        parts = [f"RTT p50 {r['rtt_p50_range'][0]:.0f}–{r['rtt_p50_range'][1]:.0f} µs"]
        if r["echo_1mib_ms"]:
            parts.append(f"1 MiB echo {r['echo_1mib_ms'][1]:.2f}–{r['echo_1mib_ms'][2]:.2f} ms")
        if r["connect_ms"]:
            parts.append(f"connect+close {r['connect_ms'][1]:.3f}–{r['connect_ms'][2]:.3f} ms")
        print(f"- {r['library']}: " + ", ".join(parts))


def shown(median_range, digits):
    return "n/a" if median_range is None else f"{median_range[0]:.{digits}f}"

if __name__ == "__main__":
    main()
