"""Many connections from Python: N WebSockets (default 1,000) on one ``IoThreads`` of 1 and of
2 threads, beside the same N with an I/O thread each, and the Rust core's own
``examples/fan_in.rs`` on 1 thread for reference; the server is that example's echo server
(``fan_in --serve``: Rust, a thread per connection, an accept queue of 4,096, in a process of
its own). bench/echo-server is not used here: its accept queue is std's 128, and a burst of
1,000 connects from one thread overflows it (the dropped SYNs are sent again after 1 s).

    python bench/many.py              # from python/, with nwebsocket installed; Markdown table
    python bench/many.py 2000 3       # 2,000 connections, the median of 3 rounds

Each mode runs in a child process of its own (so that its memory and threads are its own),
which prints one JSON line. Per mode: the connect-all time (until every ``Open`` is taken),
then each connection sends 32 bytes of text and all echoes are taken in order: a round trip
is from its send until that loop takes its echo (as ``examples/fan_in.rs`` does); then all
close (until every ``Close`` is taken). RSS and threads per connection are the process's
growth from before the connections (and the ``IoThreads``) to all open, over N. Both sides
raise their soft open-files limit to the hard one. Not run by CI.
"""

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
FAN_IN = os.path.join(REPO, "target", "release", "examples", "fan_in")
MODES = ["IoThreads(1)", "IoThreads(2)", "a thread per connection"]
RUST = "Rust fan_in, IoThreads(1)"
TIMEOUT = 60.0


def raise_open_files_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def rss_kib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def counts():
    return len(os.listdir("/proc/self/task")), len(os.listdir("/proc/self/fd"))


def child(mode, url, count):
    """One mode, in this process: prints its JSON line."""
    from nwebsocket import Close, IoThreads, Message, Open, WebSocket

    raise_open_files_limit()
    rss_before = rss_kib()
    threads_before, files_before = counts()
    io = IoThreads(int(mode[len("IoThreads(") : -1])) if mode.startswith("IoThreads") else None

    started = time.perf_counter()
    sockets = [WebSocket(url, io_threads=io) for _ in range(count)]
    for ws in sockets:
        event = ws.recv(timeout=TIMEOUT)
        if not isinstance(event, Open):
            raise SystemExit(f"{mode}: not opened: {event!r}")
    connect_all = time.perf_counter() - started
    rss = rss_kib() - rss_before
    threads, files = counts()

    payload = "x" * 32
    echo_started = time.perf_counter()
    sent = []
    for ws in sockets:
        ws.send(payload)
        sent.append(time.perf_counter())
    round_trips = []
    for ws, at in zip(sockets, sent):
        event = ws.recv(timeout=TIMEOUT)
        if not (isinstance(event, Message) and event.data == payload):
            raise SystemExit(f"{mode}: not the echo: {event!r}")
        round_trips.append(time.perf_counter() - at)
    echo_all = time.perf_counter() - echo_started
    round_trips.sort()

    close_started = time.perf_counter()
    for ws in sockets:
        ws.close()  # waits until that connection is closed
    clean = 0
    for ws in sockets:
        event = ws.recv(timeout=TIMEOUT)
        clean += isinstance(event, Close) and event.wasClean and event.code == 1000
    close_all = time.perf_counter() - close_started

    print(
        json.dumps(
            {
                "mode": mode,
                "connections": count,
                "threads_added": threads - threads_before,
                "fds_added": files - files_before,
                "rss_per_connection_kib": rss / count,
                "connect_all_ms": connect_all * 1e3,
                "echo_all_ms": echo_all * 1e3,
                "echo_p50_ms": round_trips[(count - 1) // 2] * 1e3,
                "echo_p99_ms": round_trips[int((count - 1) * 0.99)] * 1e3,
                "close_all_ms": close_all * 1e3,
                "closed_clean": clean,
            }
        ),
        flush=True,
    )


def machine():
    model = "unknown CPU"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return f"{os.cpu_count()} vCPU, {model}, Linux {platform.release()}, Python {platform.python_version()}"


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    raise_open_files_limit()  # the server inherits it
    subprocess.run(
        ["cargo", "build", "--release", "--quiet", "--example", "fan_in"], cwd=REPO, check=True
    )
    load = os.getloadavg()[0]
    results = {mode: [] for mode in MODES + [RUST]}
    server = subprocess.Popen([FAN_IN, "--serve", "127.0.0.1:0"], stderr=subprocess.PIPE, text=True)
    try:
        # "echo server on ws://127.0.0.1:PORT/echo (Ctrl-C to stop)"
        url = server.stderr.readline().split()[3]
        for _ in range(rounds):
            for mode in MODES + [RUST]:
                if mode == RUST:
                    command = [FAN_IN, "--connections", str(count), "--threads", "1", url]
                else:
                    command = [sys.executable, __file__, "--child", mode, url, str(count)]
                done = subprocess.run(command, capture_output=True, text=True, timeout=600)
                if done.returncode != 0:
                    print(f"{mode}: failed\n{done.stderr}", file=sys.stderr)
                    continue
                result = json.loads(done.stdout.strip().splitlines()[-1])
                if mode == RUST:
                    result["threads_added"] = result["threads"]
                    result["fds_added"] = result["fds"]
                results[mode].append(result)
    finally:
        server.kill()
        server.wait()

    print(f"Machine: {machine()}; load average at the start {load:.2f}, at the end {os.getloadavg()[0]:.2f}.")
    print(f"{count:,} connections, 32-byte text echo; server: fan_in --serve; medians of {rounds} rounds.\n")
    print(
        "| I/O | threads added | fds added | RSS per connection (KiB) | connect all (ms) "
        "| echo p50 (ms) | echo p99 (ms) | echo all (ms) | close all (ms) | closed cleanly |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for mode, runs in results.items():
        if not runs:
            continue
        median = lambda key: statistics.median(r[key] for r in runs)  # noqa: E731
        print(
            f"| {mode} | {median('threads_added'):.0f} | {median('fds_added'):.0f} "
            f"| {median('rss_per_connection_kib'):.1f} | {median('connect_all_ms'):.0f} "
            f"| {median('echo_p50_ms'):.2f} | {median('echo_p99_ms'):.2f} | {median('echo_all_ms'):.1f} "
            f"| {median('close_all_ms'):.0f} | {min(r['closed_clean'] for r in runs):,}/{count:,} |"
        )


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        main()
