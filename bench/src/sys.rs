//! Process-level helpers: file-descriptor limit and /proc readings.

use std::io;

/// Raises this process's RLIMIT_NOFILE soft limit to the hard limit (each
/// gateway session is one socket). Returns the soft limit now in effect.
pub fn raise_nofile_limit() -> io::Result<libc::rlim_t> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit struct.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        let mut want = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // An "unlimited" hard limit cannot be used as a soft NOFILE limit on
        // Linux (it is capped by fs.nr_open); fall back to that cap.
        if want.rlim_cur == libc::RLIM_INFINITY {
            want.rlim_cur = read_nr_open().unwrap_or(1 << 20);
        }
        // SAFETY: `want` is a valid rlimit struct.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) } != 0 {
            eprintln!(
                "warning: could not raise the open-files limit: {}",
                io::Error::last_os_error()
            );
        }
        // SAFETY: as above.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(lim.rlim_cur)
}

/// Raises the open-files limit ([`raise_nofile_limit`]) and checks that it allows `needed` open
/// files for `sessions` sessions (`option` is what sets them, for the message).
pub fn ensure_open_files(
    needed: usize,
    sessions: usize,
    option: &str,
) -> Result<(), crate::BoxError> {
    let soft = raise_nofile_limit()?;
    if soft < needed as libc::rlim_t {
        return Err(format!(
            "the open-files limit is {soft} even after raising it to the hard limit, but \
             {sessions} sessions need about {needed}; raise the hard limit or use fewer {option}"
        )
        .into());
    }
    Ok(())
}

fn read_nr_open() -> Option<libc::rlim_t> {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Resident set size of process `pid` in KiB (`VmRSS` of /proc/PID/status).
pub fn rss_kib(pid: u32) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .ok_or_else(|| io::Error::other(format!("no VmRSS in /proc/{pid}/status")))
}

/// Soft open-files limit of process `pid` (from /proc/PID/limits), if readable.
pub fn nofile_limit_of(pid: u32) -> Option<u64> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// CPU time (user + system) used so far by process `pid` (`None`: this
/// process), from /proc/PID/stat.
pub fn cpu_time(pid: Option<u32>) -> io::Result<std::time::Duration> {
    let path = pid.map_or_else(
        || "/proc/self/stat".to_string(),
        |p| format!("/proc/{p}/stat"),
    );
    let stat = std::fs::read_to_string(&path)?;
    let ticks = parse_stat_cpu_ticks(&stat)
        .ok_or_else(|| io::Error::other(format!("unexpected format of {path}")))?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = if hz > 0 { hz as f64 } else { 100.0 };
    Ok(std::time::Duration::from_secs_f64(ticks as f64 / hz))
}

/// utime + stime (fields 14 and 15) of a /proc/PID/stat line. The command
/// name (field 2) may contain spaces and parentheses, so count from the last `)`.
fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    // after_comm starts at field 3 (state); utime is field 14 -> index 11.
    let mut fields = after_comm.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// CPU ticks of the whole machine since boot: (busy, total), from the `cpu`
/// line of /proc/stat (busy = everything but idle and iowait).
pub fn machine_ticks() -> io::Result<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    stat.lines()
        .next()
        .and_then(parse_machine_ticks)
        .ok_or_else(|| io::Error::other("unexpected format of /proc/stat"))
}

fn parse_machine_ticks(line: &str) -> Option<(u64, u64)> {
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    // user nice system idle iowait irq softirq steal (guest time is in user).
    let values: Vec<u64> = fields
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    let total: u64 = values.iter().sum();
    let idle = values.get(3)? + values.get(4)?;
    Some((total - idle, total))
}

/// CPU use over a stretch of time: this tool, the server (all its processes,
/// e.g. the nodes of a cluster, summed), the whole machine.
pub struct CpuWindow {
    at: std::time::Instant,
    tool: Option<std::time::Duration>,
    server: Option<std::time::Duration>,
    machine: Option<(u64, u64)>,
    server_pids: Vec<u32>,
}

/// CPU time used so far by all of `pids`, summed (`None` if one cannot be read).
fn cpu_time_sum(pids: &[u32]) -> Option<std::time::Duration> {
    pids.iter().map(|&p| cpu_time(Some(p)).ok()).sum()
}

impl CpuWindow {
    pub fn start(server_pids: &[u32]) -> Self {
        Self {
            at: std::time::Instant::now(),
            tool: cpu_time(None).ok(),
            server: cpu_time_sum(server_pids),
            machine: machine_ticks().ok(),
            server_pids: server_pids.to_vec(),
        }
    }

    /// CPU time the server's processes used since `start`, summed; `None`
    /// without server PIDs or if one could not be read.
    pub fn server_cpu(&self) -> Option<std::time::Duration> {
        if self.server_pids.is_empty() {
            return None;
        }
        self.server
            .zip(cpu_time_sum(&self.server_pids))
            .map(|(a, b)| b.saturating_sub(a))
    }

    /// "this tool 30%, server 45%, whole machine 160% of 200% (others 85%)",
    /// in percent of one core, since `start`.
    pub fn describe(&self) -> String {
        let wall = self.at.elapsed().as_secs_f64().max(1e-9);
        let pct = |d: std::time::Duration| 100.0 * d.as_secs_f64() / wall;
        let tool = self
            .tool
            .zip(cpu_time(None).ok())
            .map(|(a, b)| pct(b.saturating_sub(a)));
        let server = self.server_cpu().map(pct);
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        let machine = self.machine.zip(machine_ticks().ok()).map(|(a, b)| {
            let busy = b.0.saturating_sub(a.0) as f64;
            let total = b.1.saturating_sub(a.1).max(1) as f64;
            100.0 * cpus as f64 * busy / total
        });
        let show = |v: Option<f64>| v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.0}%"));
        let mut out = format!(
            "this tool {}, server {}, whole machine {} of {}%",
            show(tool),
            match self.server_pids.len() {
                0 => "n/a (pass --server-pid)".to_string(),
                1 => show(server),
                n => format!("{} ({n} processes)", show(server)),
            },
            show(machine),
            cpus * 100
        );
        if let (Some(t), Some(s), Some(m)) = (tool, server, machine) {
            out.push_str(&format!(
                " (everything else, e.g. the database or other jobs: {:.0}%)",
                (m - t - s).max(0.0)
            ));
        }
        out
    }
}

/// Waits until the whole machine used less than `below` percent of one core
/// over a 2 s window (other jobs sharing it would distort latencies), for at
/// most `max_wait`. Returns whether it got quiet and the last reading.
pub fn wait_for_quiet(below: f64, max_wait: std::time::Duration) -> (bool, f64) {
    const WINDOW: std::time::Duration = std::time::Duration::from_secs(2);
    let cpus = std::thread::available_parallelism().map_or(1, usize::from) as f64;
    let deadline = std::time::Instant::now() + max_wait;
    let mut next_note = std::time::Instant::now();
    loop {
        let before = machine_ticks();
        std::thread::sleep(WINDOW);
        let busy = match (before, machine_ticks()) {
            (Ok(a), Ok(b)) => {
                100.0 * cpus * b.0.saturating_sub(a.0) as f64
                    / b.1.saturating_sub(a.1).max(1) as f64
            }
            _ => return (false, f64::NAN),
        };
        if busy < below {
            return (true, busy);
        }
        if std::time::Instant::now() >= deadline {
            return (false, busy);
        }
        if std::time::Instant::now() >= next_note {
            println!("  waiting for a quiet machine: {busy:.0}% busy (want < {below:.0}%)");
            next_note += std::time::Duration::from_secs(30);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_cpu_ticks() {
        let line = "1234 (my (odd) prog) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 \
                    4 0 12345 1000000 500 18446744073709551615";
        assert_eq!(parse_stat_cpu_ticks(line), Some(325));
        assert_eq!(parse_stat_cpu_ticks("garbage"), None);
        assert!(cpu_time(None).is_ok());
    }

    #[test]
    fn machine_ticks_line() {
        let line = "cpu  100 5 50 800 20 3 2 0 0 0";
        assert_eq!(parse_machine_ticks(line), Some((160, 980)));
        assert_eq!(parse_machine_ticks("cpu0 1 2 3 4 5 6 7 8"), None);
        assert!(machine_ticks().is_ok());
    }
}
