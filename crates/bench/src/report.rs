//! The benchmark report: markdown tables of the measured numbers, the performance targets with a
//! met/missed verdict, and the machine and settings they were measured with. The same text is printed
//! and, with `--write-report`, appended to `docs/benchmarks.md`.

use std::fmt::Write as _;
use std::time::Duration;

use crate::load::{Percentiles, PhaseResult};
use crate::procfs::Machine;

/// Everything one run measured.
#[derive(Debug, Clone)]
pub(crate) struct RunReport {
    /// When the run started (UTC).
    pub(crate) date: String,
    /// The machine the run was measured on (CPUs, memory, kernel).
    pub(crate) machine: Machine,
    /// `name: value` settings lines.
    pub(crate) settings: Vec<(String, String)>,
    /// Start-up times of every spawn (empty with `--url`).
    pub(crate) startups: Vec<Duration>,
    /// Server `VmRSS` before any request, KiB.
    pub(crate) idle_rss_kib: Option<u64>,
    /// The thread-filling phase and the server `VmRSS` right after it.
    pub(crate) fill: Option<(PhaseResult, Option<u64>)>,
    /// One result per concurrency level.
    pub(crate) levels: Vec<PhaseResult>,
    /// Server `VmHWM` at the end (highest RSS over its life), KiB.
    pub(crate) hwm_kib: Option<u64>,
}

fn ms(d: Duration) -> String {
    let v = d.as_secs_f64() * 1000.0;
    if v < 10.0 { format!("{v:.2}") } else { format!("{v:.1}") }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn opt<T>(v: Option<T>, f: impl Fn(T) -> String) -> String {
    v.map(f).unwrap_or_else(|| "n/a".into())
}

fn pct(p: Option<Percentiles>) -> String {
    opt(p, |p| format!("{} / {} / {}", ms(p.p50), ms(p.p99), ms(p.max)))
}

fn share(cpu: Option<Duration>, wall: Duration) -> String {
    opt(cpu, |c| format!("{:.0}%", 100.0 * c.as_secs_f64() / wall.as_secs_f64().max(1e-9)))
}

fn errors(r: &PhaseResult) -> String {
    if r.errors.is_empty() {
        return "0".into();
    }
    let kinds: Vec<String> = r.errors.iter().map(|(k, v)| format!("{v} {k}")).collect();
    format!("{} ({})", r.error_count(), kinds.join(", "))
}

/// Server CPU milliseconds per successful turn.
pub(crate) fn cpu_per_turn(r: &PhaseResult) -> Option<f64> {
    let cpu = r.cpu.server?;
    (r.ok > 0).then(|| cpu.as_secs_f64() * 1000.0 / r.ok as f64)
}

fn median(v: &[Duration]) -> Option<Duration> {
    let mut v = v.to_vec();
    v.sort_unstable();
    v.get(v.len().saturating_sub(1) / 2).copied()
}

fn phase_row(label: &str, r: &PhaseResult) -> String {
    format!(
        "| {label} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
        r.ok,
        r.turns_per_second(),
        errors(r),
        pct(r.first_event),
        pct(r.last_event),
        opt(cpu_per_turn(r), |c| format!("{c:.3}")),
        share(r.cpu.server, r.elapsed),
        share(r.cpu.load, r.elapsed),
        share(r.cpu.mock, r.elapsed),
        opt(r.peak_rss_kib, mib),
    )
}

/// A performance target the project set itself and whether this run met it.
struct Verdict {
    name: &'static str,
    target: &'static str,
    measured: String,
    met: Option<bool>,
}

fn verdicts(rep: &RunReport) -> Vec<Verdict> {
    const MB: f64 = 1_000_000.0 / 1024.0; // KiB per MB
    let c64 = rep.levels.iter().find(|r| r.concurrency == 64);
    let mut v = Vec::new();
    v.push(Verdict {
        name: "turns/s at c=64, 0 errors",
        target: "≥ 5,000",
        measured: opt(c64, |r| format!("{:.0} ({} errors)", r.turns_per_second(), r.error_count())),
        met: c64.map(|r| r.turns_per_second() >= 5000.0 && r.error_count() == 0),
    });
    let cpu = c64.and_then(cpu_per_turn);
    v.push(Verdict {
        name: "server CPU per turn (c=64)",
        target: "≤ 0.2 ms",
        measured: opt(cpu, |c| format!("{c:.3} ms")),
        met: cpu.map(|c| c <= 0.2),
    });
    let p99 = c64.and_then(|r| r.first_event).map(|p| p.p99);
    v.push(Verdict {
        name: "p99 time to first event (c=64)",
        target: "≤ 5 ms",
        measured: opt(p99, |d| format!("{} ms", ms(d))),
        met: p99.map(|d| d <= Duration::from_millis(5)),
    });
    v.push(Verdict {
        name: "idle RSS",
        target: "≤ 20 MB",
        measured: opt(rep.idle_rss_kib, mib),
        met: rep.idle_rss_kib.map(|k| (k as f64) <= 20.0 * MB),
    });
    let after = rep.fill.as_ref().and_then(|(_, k)| *k);
    v.push(Verdict {
        name: "RSS after 10,000 threads",
        target: "≤ 50 MB",
        measured: opt(after, mib),
        met: after.map(|k| (k as f64) <= 50.0 * MB),
    });
    let start = median(&rep.startups);
    v.push(Verdict {
        name: "start-up (median)",
        target: "≤ 20 ms",
        measured: opt(start, |d| format!("{} ms", ms(d))),
        met: start.map(|d| d <= Duration::from_millis(20)),
    });
    v
}

/// Renders the report as markdown (a `##` section).
pub(crate) fn render(rep: &RunReport) -> String {
    let mut s = String::new();
    let m = &rep.machine;
    let _ = writeln!(s, "## Run of {}\n", rep.date);
    let _ = writeln!(
        s,
        "Machine: {} logical CPUs, {}, {} MiB RAM, Linux {}.\n",
        m.cpus, m.cpu_model, m.mem_total_mib, m.kernel
    );
    let _ = writeln!(s, "Settings:\n");
    for (k, v) in &rep.settings {
        let _ = writeln!(s, "- {k}: {v}");
    }
    let _ = writeln!(s, "\n### Performance targets\n");
    let _ = writeln!(s, "| metric | target | measured | verdict |\n|---|---|---|---|");
    for v in verdicts(rep) {
        let verdict = match v.met {
            Some(true) => "met",
            Some(false) => "**missed**",
            None => "not measured",
        };
        let _ = writeln!(s, "| {} | {} | {} | {verdict} |", v.name, v.target, v.measured);
    }
    let _ = writeln!(s, "\n### Server process\n");
    let _ = writeln!(s, "| metric | value |\n|---|---|");
    if !rep.startups.is_empty() {
        let mut sorted = rep.startups.clone();
        sorted.sort_unstable();
        let all: Vec<String> = rep.startups.iter().map(|d| ms(*d)).collect();
        let _ = writeln!(
            s,
            "| start-up, spawn → /support/health 200 (ms) | median {} (runs: {}) |",
            opt(median(&rep.startups), ms),
            all.join(", ")
        );
    }
    let _ = writeln!(s, "| idle RSS | {} |", opt(rep.idle_rss_kib, mib));
    if let Some((fill, after)) = &rep.fill {
        let _ = writeln!(
            s,
            "| RSS after {} threads (created by {} full turns in {:.1} s, {} errors) | {} |",
            fill.ok,
            fill.ok + fill.error_count(),
            fill.elapsed.as_secs_f64(),
            fill.error_count(),
            opt(*after, mib)
        );
    }
    let peak = rep.levels.iter().filter_map(|r| r.peak_rss_kib).max();
    let _ = writeln!(s, "| peak RSS under load (sampled every 100 ms) | {} |", opt(peak, mib));
    let _ = writeln!(s, "| VmHWM at the end (highest RSS over the process life) | {} |", opt(rep.hwm_kib, mib));
    let _ = writeln!(s, "\n### Full turns (`threads.create` + user message, stream read to the end)\n");
    let _ = writeln!(
        s,
        "Latencies in ms as p50 / p99 / max. CPU shares are of one core (100% = one core busy for the \
         whole phase); bench = load generator, mock = mock model threads.\n"
    );
    let _ = writeln!(
        s,
        "| concurrency | turns ok | turns/s | errors | first event | last event | server CPU ms/turn | server CPU | bench CPU | mock CPU | peak RSS |\n\
         |---|---|---|---|---|---|---|---|---|---|---|"
    );
    if let Some((fill, _)) = &rep.fill {
        s.push_str(&phase_row(&format!("{} (thread fill)", fill.concurrency), fill));
    }
    for r in &rep.levels {
        s.push_str(&phase_row(&r.concurrency.to_string(), r));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::CpuUse;
    use crate::turn::TurnError;

    fn level(c: usize, ok: u64) -> PhaseResult {
        let p = Percentiles {
            p50: Duration::from_micros(900),
            p99: Duration::from_millis(4),
            max: Duration::from_millis(12),
        };
        PhaseResult {
            concurrency: c,
            elapsed: Duration::from_secs(10),
            ok,
            first_event: Some(p),
            last_event: Some(p),
            cpu: CpuUse {
                server: Some(Duration::from_secs(5)),
                load: Some(Duration::from_secs(2)),
                mock: Some(Duration::from_secs(1)),
            },
            peak_rss_kib: Some(30 * 1024),
            ..Default::default()
        }
    }

    fn report() -> RunReport {
        RunReport {
            date: "2026-01-02 03:04 UTC".into(),
            machine: Machine { cpus: 2, cpu_model: "Test CPU".into(), kernel: "6.1".into(), mem_total_mib: 1024 },
            settings: vec![("duration".into(), "10s".into())],
            startups: vec![Duration::from_millis(30), Duration::from_millis(10), Duration::from_millis(12)],
            idle_rss_kib: Some(10 * 1024),
            fill: Some((level(64, 10_000), Some(60 * 1024))),
            levels: vec![level(1, 1000), level(64, 60_000)],
            hwm_kib: Some(70 * 1024),
        }
    }

    #[test]
    fn renders_tables_and_verdicts() {
        let text = render(&report());
        assert!(text.contains("| turns/s at c=64, 0 errors | ≥ 5,000 | 6000 (0 errors) | met |"), "{text}");
        // 5 s of CPU over 60,000 turns.
        assert!(text.contains("| server CPU per turn (c=64) | ≤ 0.2 ms | 0.083 ms | met |"), "{text}");
        assert!(text.contains("| p99 time to first event (c=64) | ≤ 5 ms | 4.00 ms | met |"), "{text}");
        assert!(text.contains("| idle RSS | ≤ 20 MB | 10.0 MiB | met |"), "{text}");
        assert!(text.contains("| RSS after 10,000 threads | ≤ 50 MB | 60.0 MiB | **missed** |"), "{text}");
        assert!(text.contains("| start-up (median) | ≤ 20 ms | 12.0 ms | met |"), "{text}");
        assert!(text.contains("| 64 | 60000 | 6000 | 0 | 0.90 / 4.00 / 12.0 | 0.90 / 4.00 / 12.0 | 0.083 | 50% | 20% | 10% | 30.0 MiB |"), "{text}");
        assert!(text.contains("| 64 (thread fill) | 10000 |"), "{text}");
        assert!(text.contains("- duration: 10s"), "{text}");
    }

    #[test]
    fn lists_error_kinds_and_unmeasured_targets() {
        let mut r = report();
        r.levels[1].errors.insert(TurnError::ErrorEvent, 3);
        r.idle_rss_kib = None;
        let text = render(&r);
        assert!(text.contains("| 3 (3 error event) |"), "{text}");
        assert!(text.contains("6000 (3 errors) | **missed** |"), "{text}");
        assert!(text.contains("| idle RSS | ≤ 20 MB | n/a | not measured |"), "{text}");
    }
}
