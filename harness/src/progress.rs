//! Progress of a long `perfkit run`: on a terminal a bar with the ETA,
//! rewritten in place on stderr; otherwise (CI logs, a pipe) one line on
//! stderr every period, so a long run shows life. Both also under
//! `--quiet`, which quietens the per-run lines, not the signs of life.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How often the line is printed when stderr is not a terminal.
const PERIOD: Duration = Duration::from_secs(10);

/// Overrides [`PERIOD`] in milliseconds (tests use a short one).
pub const PERIOD_ENV: &str = "PERFKIT_PROGRESS_MS";

/// Where the run is.
struct State {
    started: Instant,
    /// 1-based configuration and run of the run under way (0: warm-up).
    config: usize,
    configs: usize,
    run: u32,
    runs: u32,
    done: u64,
    total: u64,
}

impl State {
    /// `configuration 2/4, run 1/3, 4/12 runs done, elapsed 0:20, ETA 0:40`.
    fn line(&self) -> String {
        let elapsed = self.started.elapsed();
        let at = if self.config == 0 {
            "warm-up".to_owned()
        } else {
            format!(
                "configuration {}/{}, run {}/{}",
                self.config, self.configs, self.run, self.runs
            )
        };
        format!(
            "perfkit: {at}, {}/{} runs done, elapsed {}, ETA {}",
            self.done,
            self.total,
            clock(elapsed),
            self.eta(elapsed).map_or_else(|| "unknown".into(), clock)
        )
    }

    /// The remaining runs at the mean pace of those done so far.
    fn eta(&self, elapsed: Duration) -> Option<Duration> {
        (self.done > 0).then(|| {
            elapsed.mul_f64(self.total.saturating_sub(self.done) as f64 / self.done as f64)
        })
    }
}

/// `h:mm:ss` past an hour, else `m:ss`.
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// The progress display of one run; ends when dropped.
pub struct Progress {
    state: Arc<Mutex<State>>,
    bar: Option<ProgressBar>,
    ticker: Option<(mpsc::Sender<()>, JoinHandle<()>)>,
}

impl Progress {
    /// Starts showing progress of `configs` x `runs` runs.
    pub fn start(configs: usize, runs: u32) -> Self {
        let total = configs as u64 * u64::from(runs);
        let state = Arc::new(Mutex::new(State {
            started: Instant::now(),
            config: 0,
            configs,
            run: 0,
            runs,
            done: 0,
            total,
        }));
        if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            let b = ProgressBar::new(total);
            b.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} ETA {eta} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            b.enable_steady_tick(Duration::from_millis(200));
            return Progress {
                state,
                bar: Some(b),
                ticker: None,
            };
        }
        let period = std::env::var(PERIOD_ENV)
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&ms| ms > 0)
            .map_or(PERIOD, Duration::from_millis);
        let (stop, stopped) = mpsc::channel::<()>();
        let shared = state.clone();
        let thread = std::thread::spawn(move || {
            // Any message or a dropped sender ends the loop.
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(period) {
                let line = shared.lock().unwrap_or_else(PoisonError::into_inner).line();
                crate::errln!("{line}");
            }
        });
        Progress {
            state,
            bar: None,
            ticker: Some((stop, thread)),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A run starts: configuration `config` (0-based) of the run's list, its
    /// `run`-th run (0-based), described as `what`.
    pub fn begin(&self, config: usize, run: u32, what: &str) {
        let mut s = self.state();
        s.config = config + 1;
        s.run = run + 1;
        if let Some(b) = &self.bar {
            let at = format!("config {}/{} run {}/{}", s.config, s.configs, s.run, s.runs);
            b.set_message(if what.is_empty() {
                at
            } else {
                format!("{at} ({what})")
            });
        }
    }

    /// A run ended.
    pub fn end(&self) {
        self.state().done += 1;
        if let Some(b) = &self.bar {
            b.inc(1);
        }
    }

    /// Prints per-run text: above the bar on a terminal, else on stdout.
    pub fn say(&self, text: &str) {
        match &self.bar {
            Some(b) => b.println(text.trim_end()),
            None => crate::output::say(text),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        if let Some((stop, thread)) = self.ticker.take() {
            let _ = stop.send(());
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_where_and_when() {
        let mut s = State {
            started: Instant::now(),
            config: 0,
            configs: 4,
            run: 0,
            runs: 3,
            done: 0,
            total: 12,
        };
        assert!(s
            .line()
            .starts_with("perfkit: warm-up, 0/12 runs done, elapsed 0:00, ETA unknown"));
        s.config = 2;
        s.run = 1;
        s.done = 3;
        assert!(
            s.line()
                .starts_with("perfkit: configuration 2/4, run 1/3, 3/12 runs done, elapsed "),
            "{}",
            s.line()
        );
        assert_eq!(
            s.eta(Duration::from_secs(30)),
            Some(Duration::from_secs(90))
        );
        assert_eq!(clock(Duration::from_secs(65)), "1:05");
        assert_eq!(clock(Duration::from_secs(3725)), "1:02:05");
    }
}
