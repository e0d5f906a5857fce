//! What the kernel says about this process and its threads (Linux `/proc`), and about the
//! machine the bench runs on.

use std::fs;
use std::path::Path;

/// CPU time and context switches of one thread, or summed over several.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TaskStat {
    /// Time on a CPU, in nanoseconds (`schedstat`; `stat` utime+stime in ticks as a fallback).
    pub(crate) cpu_ns: u64,
    /// Voluntary plus involuntary context switches: every time the thread left the CPU.
    pub(crate) switches: u64,
    /// Voluntary context switches only: the thread went to sleep (and was woken later).
    pub(crate) sleeps: u64,
}

impl TaskStat {
    pub(crate) fn since(self, earlier: TaskStat) -> TaskStat {
        TaskStat {
            cpu_ns: self.cpu_ns.saturating_sub(earlier.cpu_ns),
            switches: self.switches.saturating_sub(earlier.switches),
            sleeps: self.sleeps.saturating_sub(earlier.sleeps),
        }
    }

    fn add(&mut self, other: TaskStat) {
        self.cpu_ns += other.cpu_ns;
        self.switches += other.switches;
        self.sleeps += other.sleeps;
    }
}

/// The thread ids of this process, with their names (`comm`, at most 15 bytes).
pub(crate) fn threads() -> Vec<(u32, String)> {
    let Ok(dir) = fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|entry| {
            let tid = entry.file_name().to_str()?.parse().ok()?;
            let comm = fs::read_to_string(entry.path().join("comm")).ok()?;
            Some((tid, comm.trim_end().to_owned()))
        })
        .collect()
}

/// The ids of this process's threads named `name`.
pub(crate) fn threads_named(name: &str) -> Vec<u32> {
    threads()
        .into_iter()
        .filter(|(_, comm)| comm == name)
        .map(|(tid, _)| tid)
        .collect()
}

/// The ids of this process's threads named `name` or `name-N` (shared I/O threads).
pub(crate) fn threads_named_like(name: &str) -> Vec<u32> {
    threads()
        .into_iter()
        .filter(|(_, comm)| {
            comm == name
                || comm
                    .strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix('-'))
                    .is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()))
        })
        .map(|(tid, _)| tid)
        .collect()
}

/// Raises this process's soft limit on open files to its hard limit (`prlimit`), for the
/// many-connections workload's thousands of sockets; quietly does nothing where it cannot.
pub(crate) fn raise_open_files_limit() {
    let Ok(limits) = fs::read_to_string("/proc/self/limits") else {
        return;
    };
    let Some(line) = limits.lines().find(|l| l.starts_with("Max open files")) else {
        return;
    };
    if let [.., soft, hard, _] = line.split_whitespace().collect::<Vec<_>>().as_slice() {
        if soft != hard {
            let _ = std::process::Command::new("prlimit")
                .arg(format!("--pid={}", std::process::id()))
                .arg(format!("--nofile={hard}:{hard}"))
                .status();
        }
    }
}

/// The CPU time and context switches of thread `tid` of this process (zero if it is gone).
pub(crate) fn task_stat(tid: u32) -> TaskStat {
    let dir = Path::new("/proc/self/task").join(tid.to_string());
    let cpu_ns = match fs::read_to_string(dir.join("schedstat")) {
        Ok(text) => first_number(&text),
        Err(_) => ticks_ns(&fs::read_to_string(dir.join("stat")).unwrap_or_default()),
    };
    let status = fs::read_to_string(dir.join("status")).unwrap_or_default();
    let sleeps = status_field(&status, "voluntary_ctxt_switches:");
    let switches = sleeps + status_field(&status, "nonvoluntary_ctxt_switches:");
    TaskStat {
        cpu_ns,
        switches,
        sleeps,
    }
}

/// The summed stats of this process's threads for which `pick(tid, name)` holds.
pub(crate) fn tasks_stat(pick: impl Fn(u32, &str) -> bool) -> TaskStat {
    let mut sum = TaskStat::default();
    for (tid, comm) in threads() {
        if pick(tid, &comm) {
            sum.add(task_stat(tid));
        }
    }
    sum
}

/// The stats of each of this process's threads for which `pick(tid, name)` holds, by id: a
/// snapshot to subtract from a later one with [`used_since`].
pub(crate) fn tasks_snapshot(pick: impl Fn(u32, &str) -> bool) -> Vec<(u32, TaskStat)> {
    threads()
        .into_iter()
        .filter(|(tid, comm)| pick(*tid, comm))
        .map(|(tid, _)| (tid, task_stat(tid)))
        .collect()
}

/// What the threads of `after` used since `before`, thread by thread: a thread that started in
/// between counts in full, and one that ended in between does not lower the sum (its last
/// figures are gone from `/proc`, so what it used in between is not counted either).
pub(crate) fn used_since(before: &[(u32, TaskStat)], after: &[(u32, TaskStat)]) -> TaskStat {
    let mut sum = TaskStat::default();
    for (tid, now) in after {
        let earlier = before
            .iter()
            .find(|(old, _)| old == tid)
            .map_or_else(TaskStat::default, |(_, stat)| *stat);
        sum.add(now.since(earlier));
    }
    sum
}

/// The id of the main thread (equal to the process id).
pub(crate) fn main_tid() -> u32 {
    std::process::id()
}

/// Resident memory of this process in KiB, and its thread count.
pub(crate) fn rss_kib_and_threads() -> (u64, u64) {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    (
        status_field(&status, "VmRSS:"),
        status_field(&status, "Threads:"),
    )
}

/// One line describing the machine: CPUs, model, memory, kernel, load.
pub(crate) fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|line| line.starts_with("model name"))
        .and_then(|line| line.split(':').nth(1))
        .map_or("unknown CPU", str::trim)
        .to_owned();
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = status_field(&meminfo, "MemTotal:") as f64 / (1 << 20) as f64;
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cpus} CPUs ({model}), {mem_gib:.0} GiB RAM, Linux {}, load {}",
        kernel.trim(),
        load()
    )
}

/// The 1, 5 and 15 minute load averages.
pub(crate) fn load() -> String {
    let text = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn first_number(text: &str) -> u64 {
    text.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// utime + stime from a `stat` line, in nanoseconds, assuming the usual 100 ticks per second.
fn ticks_ns(stat: &str) -> u64 {
    // The name in parentheses may contain spaces; the fields after it are positional.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = after_name
        .split_whitespace()
        .map(|field| field.parse().unwrap_or(0))
        .collect();
    // Field 14 (utime) and 15 (stime) of stat(5); `after_name` starts at field 3.
    let ticks = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
    ticks * 10_000_000
}

/// The number after `key` in a `status`-style file (`VmRSS:  1234 kB` gives 1234).
fn status_field(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(key))
        .map_or(0, first_number)
}
