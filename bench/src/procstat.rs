//! CPU time and resident memory of a process, from procfs: the server under
//! test (`--server-pid`) and the bench itself (`/proc/self`).

use std::fs;

use anyhow::Context;
use serde::Serialize;

#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct ProcSample {
    /// utime + stime, all threads, seconds (clock-tick resolution).
    pub cpu_s: f64,
    /// VmRSS, bytes.
    pub rss_bytes: u64,
    /// RssAnon, bytes: the resident memory that is not file pages (the
    /// binary's code, first touched when a path first runs) or shared
    /// memory. 0 where the kernel does not report it.
    pub anon_bytes: u64,
}

/// `None` reads `/proc/self`.
pub fn sample(pid: Option<u32>) -> anyhow::Result<ProcSample> {
    let dir = match pid {
        Some(p) => format!("/proc/{p}"),
        None => "/proc/self".to_string(),
    };
    let stat = fs::read_to_string(format!("{dir}/stat")).with_context(|| format!("{dir}/stat"))?;
    let status =
        fs::read_to_string(format!("{dir}/status")).with_context(|| format!("{dir}/status"))?;
    Ok(ProcSample {
        cpu_s: cpu_ticks(&stat).context("parsing stat")? as f64 / clock_ticks() as f64,
        rss_bytes: rss_kb(&status).context("no VmRSS in status")? * 1024,
        anon_bytes: status_kb(&status, "RssAnon:").unwrap_or(0) * 1024,
    })
}

/// utime + stime in clock ticks. Fields are counted after the `)` that ends
/// the command name, which may itself hold spaces and parentheses.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut f = rest.split_whitespace();
    // After ')': state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt
    // majflt cmajflt utime(14) stime(15).
    let utime: u64 = f.nth(11)?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some(utime + stime)
}

fn rss_kb(status: &str) -> Option<u64> {
    status_kb(status, "VmRSS:")
}

/// A `NAME:  N kB` line of /proc/PID/status.
fn status_kb(status: &str, name: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// CPU time of the whole host, all cores, from the first line of /proc/stat.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HostSample {
    /// Seconds spent busy (everything but idle and iowait), summed over cores.
    pub busy_s: f64,
    pub cores: usize,
}

pub fn host() -> anyhow::Result<HostSample> {
    let stat = fs::read_to_string("/proc/stat").context("/proc/stat")?;
    parse_host(&stat).context("parsing /proc/stat")
}

fn parse_host(stat: &str) -> Option<HostSample> {
    let mut lines = stat.lines();
    let first = lines.next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = first
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal (guest is inside user).
    let busy: u64 = v.iter().take(8).sum::<u64>() - v.get(3)? - v.get(4).unwrap_or(&0);
    let cores = lines
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .count();
    Some(HostSample {
        busy_s: busy as f64 / clock_ticks() as f64,
        cores,
    })
}

/// Open descriptors of a process (entries of /proc/PID/fd).
pub fn fd_count(pid: u32) -> anyhow::Result<usize> {
    entries(&format!("/proc/{pid}/fd"))
}

fn entries(dir: &str) -> anyhow::Result<usize> {
    Ok(fs::read_dir(dir).with_context(|| dir.to_string())?.count())
}

/// Whether a process is still there (for a server that died mid-run).
pub fn alive(pid: u32) -> bool {
    fs::metadata(format!("/proc/{pid}")).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_names() {
        let stat = "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0";
        assert_eq!(cpu_ticks(stat), Some(300));
        let status = "Name:\tx\nVmRSS:\t   2048 kB\nRssAnon:\t  1024 kB\n";
        assert_eq!(rss_kb(status), Some(2048));
        assert_eq!(status_kb(status, "RssAnon:"), Some(1024));
        assert_eq!(status_kb(status, "RssFile:"), None);
        let h = parse_host("cpu  100 0 50 900 10 5 5 0 0 0\ncpu0 1\ncpu1 1\nintr 5\n").unwrap();
        assert_eq!(h.cores, 2);
        assert!((h.busy_s - 160.0 / clock_ticks() as f64).abs() < 1e-9);
    }

    #[test]
    fn samples_self() {
        let s = sample(None).unwrap();
        assert!(s.rss_bytes > 0);
        assert!(s.anon_bytes > 0 && s.anon_bytes <= s.rss_bytes);
        assert!(s.cpu_s >= 0.0);
    }

    #[test]
    fn counts_descriptors() {
        let dir = std::env::temp_dir().join(format!("procstat-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        for f in ["a", "b", "c"] {
            fs::write(dir.join(f), "").unwrap();
        }
        let n = entries(dir.to_str().unwrap());
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(n.unwrap(), 3);
        assert!(entries(dir.to_str().unwrap()).is_err(), "gone");
        // stdin, stdout, stderr at least.
        assert!(fd_count(std::process::id()).unwrap() >= 3);
    }
}
