//! The server's log, captured for assertions: one global subscriber for the whole test
//! binary writes into a buffer that tests search (look for something unique to the test).

use std::io::Write;
use std::sync::{Mutex, OnceLock};

static BUFFER: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static INSTALLED: OnceLock<()> = OnceLock::new();

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = BUFFER.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Starts capturing (idempotent). Call before starting the server whose log you check.
pub fn capture() {
    INSTALLED.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            // The server's own filter (its directives for other crates included), so tests
            // see what an operator's log would show.
            .with_env_filter(hallpass::logging::filter(
                "hallpass=info,tower_sessions=warn,tower_sessions_core=warn",
            ))
            .with_ansi(false)
            .with_writer(|| Capture)
            .try_init();
    });
}

/// Every captured line containing `needle`.
pub fn lines_with(needle: &str) -> Vec<String> {
    let b = BUFFER.lock().map(|b| b.clone()).unwrap_or_default();
    String::from_utf8_lossy(&b)
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_owned)
        .collect()
}

/// The whole captured log (to check that secrets never appear).
pub fn all() -> String {
    let b = BUFFER.lock().map(|b| b.clone()).unwrap_or_default();
    String::from_utf8_lossy(&b).into_owned()
}
