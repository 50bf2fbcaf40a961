//! The progress line of long `traces` runs: one line on stderr, redrawn in place, shown
//! only when stderr is a terminal (so logs and pipes get nothing but the results).

use std::io::{self, IsTerminal, Write};
use std::time::{Duration, Instant};

/// The shortest time between two redraws.
const REDRAW_EVERY: Duration = Duration::from_millis(100);

/// Progress through a fixed number of steps (replays), each with a label.
pub(super) struct Progress {
    enabled: bool,
    steps: usize,
    step: usize,
    label: String,
    last_draw: Option<Instant>,
}

impl Progress {
    /// Progress through `steps` steps, drawn on stderr if it is a terminal.
    pub(super) fn on_stderr(steps: usize) -> Progress {
        Progress {
            enabled: io::stderr().is_terminal(),
            steps,
            step: 0,
            label: String::new(),
            last_draw: None,
        }
    }

    /// Starts the next step.
    pub(super) fn begin(&mut self, label: String) {
        self.step += 1;
        self.label = label;
        self.last_draw = None;
        self.draw(0.0);
    }

    /// Reports how far through the current step the run is, from 0 to 1.
    pub(super) fn update(&mut self, fraction: f64) {
        if self
            .last_draw
            .is_some_and(|last| last.elapsed() >= REDRAW_EVERY)
        {
            self.draw(fraction);
        }
    }

    /// Clears the line.
    pub(super) fn finish(&mut self) {
        if self.enabled {
            eprint!("\r\x1b[2K");
            let _ = io::stderr().flush();
        }
    }

    fn draw(&mut self, fraction: f64) {
        if !self.enabled {
            return;
        }
        eprint!(
            "\r\x1b[2K[{}/{}] {} {:3.0}%",
            self.step,
            self.steps,
            self.label,
            fraction * 100.0
        );
        let _ = io::stderr().flush();
        self.last_draw = Some(Instant::now());
    }
}
