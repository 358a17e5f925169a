//! Running a plan: worker threads in this process, or child processes of
//! this binary when the connections exceed one process's fd limit, under
//! one controller that samples the server and the bench around the window.
//!
//! Child protocol (JSON lines): the child prints `{"progress":…}` now and
//! then, `{"ready":…}` when its connections are set up, reads one line
//! `start <start_ns> <end_ns>` (or `abort`) on stdin, and prints
//! `{"result":…}` at the end. CLOCK_MONOTONIC is one clock for all of them.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::procstat::{self, ProcSample};
use crate::report::Progress;
use crate::scenario::{run_worker, Plan};
use crate::scrape;
use crate::stats::{mono_ns, Tally};
use crate::worker::{Live, LiveSnap, Phase, Share, Window, WorkerCtx};

/// How the load is laid out over processes, workers and cores.
#[derive(Debug, Clone, Serialize)]
pub struct Layout {
    pub procs: usize,
    /// Worker threads per process.
    pub workers: usize,
    /// Cores workers are pinned to, round-robin (empty: not pinned).
    pub cpus: Vec<usize>,
    /// Connection attempts in flight per process.
    pub connect_concurrency: usize,
    /// SCHED_FIFO priority of the workers (0: the normal policy).
    pub realtime_priority: u8,
}

/// What the controller measured around the run.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub tally: Tally,
    pub window: Window,
    /// From the window's start to the last worker done (fanout: incl. drain).
    pub active_s: f64,
    pub server_pid: Option<u32>,
    pub server_before: Option<ProcSample>,
    pub server_established: Option<ProcSample>,
    pub server_end: Option<ProcSample>,
    /// The server's delivery-latency histogram over the run (`--metrics-url`).
    pub server_latency: Option<scrape::Reading>,
    /// Bench CPU seconds over the active period, all processes.
    pub bench_cpu_s: f64,
    /// Host CPU over the active period (all processes on the box).
    pub host_busy_s: Option<f64>,
    pub host_cores: usize,
    pub layout: Layout,
}

/// What a child sends its parent.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ChildMsg {
    Progress(LiveSnap),
    Ready(LiveSnap),
    Result { tally: Box<Tally>, cpu_s: f64 },
}

struct Status {
    snap: LiveSnap,
    ready: bool,
    done: bool,
}

/// Worker threads of this process.
struct LocalFleet {
    threads: Vec<JoinHandle<Tally>>,
    live: Arc<Live>,
    phase: watch::Sender<Phase>,
}

impl LocalFleet {
    fn spawn(
        plan: &Arc<Plan>,
        share: &Share,
        layout: &Layout,
        first_worker: usize,
    ) -> anyhow::Result<LocalFleet> {
        let live = Arc::new(Live::default());
        let (phase, _) = watch::channel(Phase::Setup);
        let mut threads = Vec::new();
        for w in 0..layout.workers {
            let global_id = first_worker + w;
            let ctx = WorkerCtx {
                plan: plan.clone(),
                share: share.split(layout.workers, w),
                live: live.clone(),
                global_id,
                connect_concurrency: layout.connect_concurrency.div_ceil(layout.workers),
                phase: phase.subscribe(),
            };
            let cpu = (!layout.cpus.is_empty()).then(|| layout.cpus[global_id % layout.cpus.len()]);
            let realtime = layout.realtime_priority;
            let live = live.clone();
            let t = std::thread::Builder::new()
                .name(format!("bench-worker-{w}"))
                .spawn(move || {
                    if let Some(id) = cpu {
                        if !core_affinity::set_for_current(core_affinity::CoreId { id }) {
                            eprintln!("warning: could not pin worker to cpu {id}");
                        }
                    }
                    if realtime > 0 {
                        // Checked at start-up (main.rs), so refused only if
                        // the limits changed since.
                        if let Err(e) = ringcast::sys::set_realtime(realtime) {
                            eprintln!("warning: worker {w}: realtime priority {realtime}: {e}");
                        }
                    }
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("tokio runtime");
                    let local = tokio::task::LocalSet::new();
                    let tally = local.block_on(&rt, run_worker(ctx));
                    live.done_workers.fetch_add(1, Relaxed);
                    tally
                })
                .context("spawning a worker thread")?;
            threads.push(t);
        }
        Ok(LocalFleet {
            threads,
            live,
            phase,
        })
    }

    fn status(&self) -> anyhow::Result<Status> {
        let n = self.threads.len() as u64;
        let ready = self.live.ready_workers.load(Relaxed) >= n;
        let done = self.live.done_workers.load(Relaxed) >= n;
        if !ready && self.threads.iter().any(|t| t.is_finished()) {
            bail!("a worker thread ended during setup (panicked?)");
        }
        Ok(Status {
            snap: self.live.snap(),
            ready,
            done,
        })
    }

    fn start(&self, w: Window) {
        self.phase.send_replace(Phase::Run(w));
    }

    fn abort(&self) {
        self.phase.send_replace(Phase::Abort);
    }

    fn join(self) -> anyhow::Result<Tally> {
        let mut all = Tally::default();
        for t in self.threads {
            let tally = t
                .join()
                .map_err(|_| anyhow::anyhow!("a worker thread panicked"))?;
            all.merge(&tally);
        }
        Ok(all)
    }
}

/// Child processes of this binary, one share each.
struct ChildFleet {
    children: Vec<Child>,
    stdins: Vec<ChildStdin>,
    rx: mpsc::Receiver<(usize, anyhow::Result<ChildMsg>)>,
    snaps: Vec<LiveSnap>,
    ready: Vec<bool>,
    results: Vec<Option<(Tally, f64)>>,
}

impl ChildFleet {
    fn spawn(procs: usize) -> anyhow::Result<ChildFleet> {
        let exe = std::env::current_exe().context("locating our own binary")?;
        let args: Vec<String> = std::env::args().skip(1).collect();
        let (tx, rx) = mpsc::channel();
        let mut children = Vec::new();
        let mut stdins = Vec::new();
        for i in 0..procs {
            let mut child = Command::new(&exe)
                .args(&args)
                .arg("--child")
                .arg(format!("{i}/{procs}"))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .with_context(|| format!("spawning child {i}"))?;
            stdins.push(child.stdin.take().expect("piped"));
            let out = child.stdout.take().expect("piped");
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines() {
                    let msg = line
                        .map_err(anyhow::Error::from)
                        .and_then(|l| serde_json::from_str::<ChildMsg>(&l).map_err(Into::into));
                    let stop = msg.is_err();
                    if tx.send((i, msg)).is_err() || stop {
                        return;
                    }
                }
                let _ = tx.send((i, Err(anyhow::anyhow!("child {i} exited early"))));
            });
            children.push(child);
        }
        Ok(ChildFleet {
            snaps: vec![LiveSnap::default(); procs],
            ready: vec![false; procs],
            results: (0..procs).map(|_| None).collect(),
            children,
            stdins,
            rx,
        })
    }

    fn status(&mut self) -> anyhow::Result<Status> {
        while let Ok((i, msg)) = self.rx.try_recv() {
            match msg {
                Ok(ChildMsg::Progress(s)) => self.snaps[i] = s,
                Ok(ChildMsg::Ready(s)) => {
                    self.snaps[i] = s;
                    self.ready[i] = true;
                }
                Ok(ChildMsg::Result { tally, cpu_s }) => self.results[i] = Some((*tally, cpu_s)),
                Err(e) if self.results[i].is_some() => drop(e),
                Err(e) => return Err(e.context(format!("child {i}"))),
            }
        }
        let mut snap = LiveSnap::default();
        for s in &self.snaps {
            snap += *s;
        }
        Ok(Status {
            snap,
            ready: self.ready.iter().all(|r| *r),
            done: self.results.iter().all(Option::is_some),
        })
    }

    fn send(&mut self, line: &str) -> anyhow::Result<()> {
        for (i, s) in self.stdins.iter_mut().enumerate() {
            writeln!(s, "{line}").with_context(|| format!("writing to child {i}"))?;
            s.flush()?;
        }
        Ok(())
    }

    fn join(mut self) -> anyhow::Result<(Tally, f64)> {
        let mut all = Tally::default();
        let mut cpu = 0.0;
        for (i, r) in self.results.iter().enumerate() {
            let (t, c) = r
                .as_ref()
                .with_context(|| format!("no result from child {i}"))?;
            all.merge(t);
            cpu += c;
        }
        for c in &mut self.children {
            let _ = c.wait();
        }
        Ok((all, cpu))
    }
}

impl Drop for ChildFleet {
    fn drop(&mut self) {
        for c in &mut self.children {
            if let Ok(None) = c.try_wait() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

enum Fleet {
    Local(LocalFleet),
    Children(ChildFleet),
}

impl Fleet {
    fn status(&mut self) -> anyhow::Result<Status> {
        match self {
            Fleet::Local(f) => f.status(),
            Fleet::Children(f) => f.status(),
        }
    }

    fn start(&mut self, w: Window) -> anyhow::Result<()> {
        match self {
            Fleet::Local(f) => {
                f.start(w);
                Ok(())
            }
            Fleet::Children(f) => f.send(&format!("start {} {}", w.start_ns, w.end_ns)),
        }
    }

    /// Tally and the CPU seconds the children reported (0 for local).
    fn join(self) -> anyhow::Result<(Tally, f64)> {
        match self {
            Fleet::Local(f) => Ok((f.join()?, 0.0)),
            Fleet::Children(f) => f.join(),
        }
    }
}

pub struct ControlOpts {
    pub server_pid: Option<u32>,
    /// The server's /metrics, for its delivery-latency histogram.
    pub metrics_url: Option<String>,
    /// Pause between setup and the established-RSS sample.
    pub settle: Duration,
    pub progress: bool,
}

/// The top-level run.
pub fn control(plan: Arc<Plan>, layout: Layout, opts: ControlOpts) -> anyhow::Result<Outcome> {
    let server = |what: &str| -> anyhow::Result<Option<ProcSample>> {
        opts.server_pid
            .map(|pid| {
                procstat::sample(Some(pid))
                    .with_context(|| format!("sampling server pid {pid} ({what})"))
            })
            .transpose()
    };
    let server_before = server("before")?;
    let share = plan.share();
    let mut fleet = if layout.procs > 1 {
        Fleet::Children(ChildFleet::spawn(layout.procs)?)
    } else {
        Fleet::Local(LocalFleet::spawn(&plan, &share, &layout, 0)?)
    };
    let progress = Progress::new(opts.progress, plan.scenario.name(), share.total() as u64);

    // Setup.
    loop {
        let st = fleet.status()?;
        progress.setup(st.snap);
        if st.ready {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(opts.settle);
    let server_established = server("established")?;
    let metrics_before = opts.metrics_url.as_deref().and_then(scrape::read);
    let bench0 = procstat::sample(None)?;
    let host0 = procstat::host().ok();
    let start_ns = mono_ns() + 1_000_000;
    let window = Window {
        start_ns,
        end_ns: start_ns + plan.duration.as_nanos() as u64,
    };
    fleet.start(window)?;
    let t0 = Instant::now();
    progress.run_phase(plan.duration);

    // Run (and drain).
    loop {
        let st = fleet.status()?;
        progress.run(st.snap, t0.elapsed());
        if st.done {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let active_s = mono_ns().saturating_sub(start_ns) as f64 / 1e9;
    let server_end = server("end")?;
    let server_latency = metrics_before.and_then(|b| {
        let url = opts.metrics_url.as_deref()?;
        Some(scrape::read(url)?.since(&b))
    });
    let bench1 = procstat::sample(None)?;
    let host1 = procstat::host().ok();
    progress.finish();
    let (tally, child_cpu) = fleet.join()?;
    Ok(Outcome {
        tally,
        window,
        active_s,
        server_pid: opts.server_pid,
        server_before,
        server_established,
        server_end,
        server_latency,
        bench_cpu_s: (bench1.cpu_s - bench0.cpu_s) + child_cpu,
        host_busy_s: host0.zip(host1).map(|(a, b)| b.busy_s - a.busy_s),
        host_cores: host1.map_or(0, |h| h.cores),
        layout,
    })
}

/// `--child i/n`: run this process's share and talk to the parent.
pub fn child(plan: Arc<Plan>, layout: Layout, index: usize, count: usize) -> anyhow::Result<()> {
    let share = plan.share().split(count, index);
    let fleet = LocalFleet::spawn(&plan, &share, &layout, index * layout.workers)?;
    let mut out = std::io::stdout().lock();
    let mut say = |m: &ChildMsg| -> anyhow::Result<()> {
        serde_json::to_writer(&mut out, m)?;
        out.write_all(b"\n")?;
        out.flush()?;
        Ok(())
    };
    let mut last = Instant::now();
    loop {
        let st = fleet.status()?;
        if st.ready {
            say(&ChildMsg::Ready(st.snap))?;
            break;
        }
        if last.elapsed() > Duration::from_millis(200) {
            say(&ChildMsg::Progress(st.snap))?;
            last = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let mut words = line.split_whitespace();
    let window = match (words.next(), words.next(), words.next()) {
        (Some("start"), Some(s), Some(e)) => Window {
            start_ns: s.parse()?,
            end_ns: e.parse()?,
        },
        _ => {
            fleet.abort();
            let _ = fleet.join();
            bail!("parent said {line:?}, not start");
        }
    };
    let cpu0 = procstat::sample(None)?.cpu_s;
    fleet.start(window);
    loop {
        let st = fleet.status()?;
        if st.done {
            break;
        }
        if last.elapsed() > Duration::from_millis(200) {
            say(&ChildMsg::Progress(st.snap))?;
            last = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let cpu_s = procstat::sample(None)?.cpu_s - cpu0;
    let tally = fleet.join()?;
    say(&ChildMsg::Result {
        tally: Box::new(tally),
        cpu_s,
    })?;
    Ok(())
}
