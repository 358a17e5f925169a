//! `--report DIR`: report.md (what was run, on what machine, the table),
//! report.json, and the SVG charts it shows.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use anyhow::Context;

use super::{charts, Report};

/// Writes the report directory (created if needed; files replaced).
pub fn write_dir(dir: &Path, r: &Report) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let put = |name: &str, text: &str| {
        let path = dir.join(name);
        fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    };
    put("report.json", &serde_json::to_string_pretty(r)?)?;
    let mut figures = Vec::new();
    let title = |what: &str| format!("{} — {what}", r.scenario);
    let curves: Vec<charts::Series> = r.curves.iter().map(|(l, p)| (*l, p.clone())).collect();
    if let Some(svg) = charts::latency(&title("latency percentiles"), &curves)? {
        put("latency.svg", &svg)?;
        figures.push(("Latency percentiles", "latency.svg"));
    }
    // Steps: each second's count is drawn flat over [s, s + 1).
    let per_s = |f: fn(&super::ThroughputPoint) -> u64| -> Vec<(f64, f64)> {
        r.throughput_timeline
            .iter()
            .flat_map(|p| [(p.s as f64, f(p) as f64), (p.s as f64 + 1.0, f(p) as f64)])
            .collect()
    };
    let delivered = match r.scenario {
        "echo" => "replies",
        _ => "deliveries",
    };
    let series = [
        (delivered, per_s(|p| p.delivered)),
        ("acknowledged publications", per_s(|p| p.acked)),
        ("resubscribed connections", per_s(|p| p.resubscribed)),
    ];
    let drops: Vec<f64> = r
        .storm
        .iter()
        .flat_map(|s| s.rounds.iter().map(|r| r.at_s))
        .collect();
    if let Some(svg) = charts::throughput(&title("per second"), &series, &drops)? {
        put("throughput.svg", &svg)?;
        figures.push(("Throughput per second", "throughput.svg"));
    }
    put("report.md", &markdown(r, &figures))?;
    Ok(())
}

fn markdown(r: &Report, figures: &[(&str, &str)]) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# ringcast-bench {}\n", r.scenario);
    let _ = writeln!(
        md,
        "ringcast-bench {} run at {} UTC against `{}`.\n",
        env!("CARGO_PKG_VERSION"),
        utc_now(),
        r.url
    );
    let _ = writeln!(md, "## Command\n\n```sh\n{}\n```\n", command_line());
    let _ = writeln!(md, "## Machine\n\n| | |\n|---|---|");
    for (k, v) in machine() {
        let _ = writeln!(md, "| {k} | {v} |");
    }
    let _ = writeln!(
        md,
        "| bench layout | {} process(es) × {} worker(s), cpus {:?} |",
        r.layout.procs, r.layout.workers, r.layout.cpus
    );
    if let Some(h) = &r.host {
        let _ = writeln!(
            md,
            "| other load during the run | {:.2} cores busy with neither the server nor the bench |",
            h.other_busy_cores
        );
    }
    let _ = writeln!(md, "\n## Parameters\n\n| parameter | value |\n|---|---|");
    let _ = writeln!(md, "| duration_s | {} |", r.duration_s);
    let mut params = Vec::new();
    flatten("", &r.config, &mut params);
    for (k, v) in params {
        let _ = writeln!(md, "| {k} | {v} |");
    }
    let _ = writeln!(md, "\n## Results\n\n```\n{}```\n", r.table());
    if !figures.is_empty() {
        let _ = writeln!(md, "## Charts\n");
        for (caption, file) in figures {
            let _ = writeln!(md, "![{caption}]({file})\n");
        }
    }
    let _ = writeln!(md, "Raw figures: [report.json](report.json).");
    md
}

/// `a.b = v` pairs of a JSON object, in order.
fn flatten(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        serde_json::Value::Null => out.push((prefix.to_string(), "-".into())),
        serde_json::Value::String(s) if s.is_empty() => {
            out.push((prefix.to_string(), "\"\"".into()))
        }
        serde_json::Value::String(s) => out.push((prefix.to_string(), format!("`{s}`"))),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

/// This process's command line, shell-quoted where needed.
fn command_line() -> String {
    std::env::args()
        .map(|a| {
            let plain = !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@+%".contains(c));
            if plain {
                a
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Kernel, CPU model, cores and memory, from procfs.
fn machine() -> Vec<(&'static str, String)> {
    let read = |p: &str| fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let field = |text: &str, key: &str| {
        text.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    };
    let mem_gib = field(&read("/proc/meminfo"), "MemTotal")
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map(|kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0));
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    vec![
        (
            "kernel",
            format!(
                "{} {}",
                read("/proc/sys/kernel/ostype").trim(),
                read("/proc/sys/kernel/osrelease").trim()
            ),
        ),
        (
            "CPU",
            field(&cpuinfo, "model name").unwrap_or_else(|| "unknown".into()),
        ),
        ("cores", cores.to_string()),
        ("memory", mem_gib.unwrap_or_else(|| "unknown".into())),
    ]
}

/// Now as `YYYY-MM-DD HH:MM:SS` (UTC).
fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day) (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_params() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        let mut out = Vec::new();
        flatten(
            "",
            &serde_json::json!({"a": 1, "p": {"kind": "tcp", "n": null}}),
            &mut out,
        );
        assert_eq!(
            out,
            vec![
                ("a".into(), "1".into()),
                ("p.kind".into(), "`tcp`".into()),
                ("p.n".into(), "-".into())
            ]
        );
        assert!(machine()
            .iter()
            .any(|(k, v)| *k == "kernel" && v.contains("Linux")));
    }
}
