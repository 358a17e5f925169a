//! Live progress on stderr (indicatif), hidden when stderr is not a
//! terminal or with `--no-progress`.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::worker::LiveSnap;

pub struct Progress {
    bar: ProgressBar,
    scenario: &'static str,
    total: u64,
}

impl Progress {
    pub fn new(enabled: bool, scenario: &'static str, total: u64) -> Progress {
        let target = if enabled && std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(total), target);
        bar.set_style(
            ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} {msg}")
                .expect("template")
                .progress_chars("=> "),
        );
        bar.set_prefix("connect");
        Progress {
            bar,
            scenario,
            total,
        }
    }

    pub fn setup(&self, s: LiveSnap) {
        self.bar.set_position(s.connected + s.failed);
        self.bar.set_message(format!("{} failed", s.failed));
    }

    pub fn run_phase(&self, d: Duration) {
        self.bar.set_length(d.as_millis() as u64);
        self.bar.set_position(0);
        self.bar.set_style(
            ProgressStyle::with_template("{prefix:>8} [{bar:30}] {elapsed} {msg}")
                .expect("template")
                .progress_chars("=> "),
        );
        self.bar.set_prefix(self.scenario);
    }

    pub fn run(&self, s: LiveSnap, elapsed: Duration) {
        self.bar.set_position(elapsed.as_millis() as u64);
        let secs = elapsed.as_secs_f64().max(1e-3);
        self.bar.set_message(format!(
            "{}/{} conns, sent {} recv {} ({:.0}/s)",
            s.connected,
            self.total,
            s.sent,
            s.received,
            s.received as f64 / secs
        ));
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
