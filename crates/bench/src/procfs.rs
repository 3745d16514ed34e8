//! Readers of Linux `/proc`: CPU time of a process or of some of this process's threads, resident
//! memory (`VmRSS`, `VmHWM`), and a description of the machine (core count, CPU model, kernel).
//!
//! Every reader returns an `io::Result` so the benchmark can skip a metric (another OS, a server that
//! is not a child of ours) instead of failing the run.

use std::fs;
use std::io;
use std::time::Duration;

/// Clock ticks per second of the `utime`/`stime` fields. Linux always reports them in `USER_HZ`,
/// which is 100 on every architecture this benchmark targets (x86_64, aarch64).
const TICKS_PER_SECOND: u64 = 100;

/// Parses `utime + stime` (fields 14 and 15) out of a `/proc/…/stat` line.
fn stat_cpu(stat: &str) -> io::Result<Duration> {
    // The command name (field 2) is in parentheses and may contain spaces: split after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).ok_or_else(|| bad("no ')' in stat line"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3, so field N is at index N - 3.
    let field = |n: usize| -> io::Result<u64> {
        fields.get(n - 3).and_then(|f| f.parse().ok()).ok_or_else(|| bad("short stat line"))
    };
    let ticks = field(14)? + field(15)?;
    Ok(Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND))
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// User + system CPU time used so far by process `pid` (all its threads, living or exited).
pub(crate) fn process_cpu(pid: u32) -> io::Result<Duration> {
    stat_cpu(&fs::read_to_string(format!("/proc/{pid}/stat"))?)
}

/// User + system CPU time of this process's threads whose name starts with `prefix`.
///
/// Thread names come from `/proc/self/task/<tid>/comm` (at most 15 bytes). Exited threads are not
/// counted, so this is meant for long-lived runtime workers.
pub(crate) fn own_threads_cpu(prefix: &str) -> io::Result<Duration> {
    let mut total = Duration::ZERO;
    for entry in fs::read_dir("/proc/self/task")? {
        let dir = entry?.path();
        let Ok(comm) = fs::read_to_string(dir.join("comm")) else {
            continue;
        };
        if !comm.trim_end().starts_with(prefix) {
            continue;
        }
        if let Ok(stat) = fs::read_to_string(dir.join("stat")) {
            total += stat_cpu(&stat)?;
        }
    }
    Ok(total)
}

/// User + system CPU time of this whole process.
pub(crate) fn self_cpu() -> io::Result<Duration> {
    stat_cpu(&fs::read_to_string("/proc/self/stat")?)
}

/// Resident memory of a process, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Memory {
    /// `VmRSS`: resident now.
    pub(crate) rss_kib: u64,
    /// `VmHWM`: the highest resident size since the process started.
    pub(crate) hwm_kib: u64,
}

/// Reads `VmRSS` and `VmHWM` of process `pid`.
pub(crate) fn memory(pid: u32) -> io::Result<Memory> {
    parse_status(&fs::read_to_string(format!("/proc/{pid}/status"))?)
}

fn parse_status(status: &str) -> io::Result<Memory> {
    let kib = |key: &str| -> io::Result<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| bad("no VmRSS/VmHWM in status"))
    };
    Ok(Memory { rss_kib: kib("VmRSS:")?, hwm_kib: kib("VmHWM:")? })
}

/// What the report says about the machine.
#[derive(Debug, Clone)]
pub(crate) struct Machine {
    /// Logical CPUs available to this process.
    pub(crate) cpus: usize,
    /// `model name` of the first CPU in `/proc/cpuinfo`.
    pub(crate) cpu_model: String,
    /// Kernel release (`/proc/sys/kernel/osrelease`).
    pub(crate) kernel: String,
    /// Total memory in MiB (`MemTotal` of `/proc/meminfo`).
    pub(crate) mem_total_mib: u64,
}

/// Describes this machine; unknown values read `unknown` / 0.
pub(crate) fn machine() -> Machine {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let cpu_model = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let mem_total_mib = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|kib| kib / 1024)
        .unwrap_or(0);
    Machine { cpus, cpu_model, kernel, mem_total_mib }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_from_stat_with_spaces_in_the_name() {
        let line = "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 37 0 0 20 0 4 0 100 0 0";
        assert_eq!(stat_cpu(line).unwrap(), Duration::from_millis(2870));
    }

    #[test]
    fn rejects_truncated_stat() {
        assert!(stat_cpu("1 (x) S 1 2").is_err());
    }

    #[test]
    fn parses_memory_from_status() {
        let status = "Name:\tsupport\nVmPeak:\t  99 kB\nVmHWM:\t    14336 kB\nVmRSS:\t    12288 kB\n";
        assert_eq!(parse_status(status).unwrap(), Memory { rss_kib: 12288, hwm_kib: 14336 });
    }

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        let mem = memory(pid).unwrap();
        assert!(mem.rss_kib > 0 && mem.hwm_kib >= mem.rss_kib, "{mem:?}");
        assert!(process_cpu(pid).is_ok());
        assert!(self_cpu().is_ok());
        assert!(machine().cpus >= 1);
    }
}
