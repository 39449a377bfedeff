//! Progress on a terminal (indicatif), nothing otherwise.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use rime_engine::ops::Progress;

pub struct TermProgress {
    bar: Option<ProgressBar>,
    quiet: bool,
    bytes: AtomicU64,
}

impl TermProgress {
    pub fn new(quiet: bool, verb: &str) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let b = ProgressBar::new_spinner();
            b.set_style(
                ProgressStyle::with_template(&format!(
                    "{{spinner}} {verb} {{pos}} items, {{msg}} [{{elapsed}}]"
                ))
                .expect("valid template"),
            );
            b.enable_steady_tick(Duration::from_millis(120));
            b
        });
        TermProgress {
            bar,
            quiet,
            bytes: AtomicU64::new(0),
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl Progress for TermProgress {
    fn cancelled(&self) -> bool {
        cancel_requested()
    }

    fn item_done(&self, bytes: u64) {
        if let Some(b) = &self.bar {
            b.inc(1);
        }
        self.bytes_done(bytes);
    }

    fn bytes_done(&self, bytes: u64) {
        if let Some(b) = &self.bar {
            if bytes > 0 {
                let total = self.bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
                b.set_message(crate::output::bytes(total));
            }
        }
    }

    fn warning(&self, message: &str) {
        if self.quiet {
            return;
        }
        match &self.bar {
            Some(b) => b.println(format!("warning: {message}")),
            None => eprintln!("warning: {message}"),
        }
    }
}

/// Set by the first SIGINT or SIGTERM: operations stop at the next file or chunk and clean up
/// (snapshots removed, mounts released) on the way out. A second signal exits at once.
static CANCEL: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Route SIGINT and SIGTERM to [`CANCEL`] for the rest of the process.
pub fn install_cancel_handler() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
        return;
    };
    std::thread::spawn(move || {
        for sig in signals.forever() {
            if CANCEL.swap(true, Ordering::SeqCst) {
                eprintln!("rime: second signal: exiting without cleaning up");
                std::process::exit(128 + sig);
            }
            eprintln!(
                "rime: signal {sig}: stopping and cleaning up (send it again to exit at once)"
            );
        }
    });
}

pub fn cancel_requested() -> bool {
    CANCEL.load(Ordering::Relaxed)
}
