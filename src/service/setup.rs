//! The first-run state: whether an admin exists, and the one-time setup code.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use rand::Rng;
use subtle::ConstantTimeEq;

/// Shared by every request: cheap to ask "is this instance set up?" without a query.
#[derive(Debug)]
pub struct SetupGate {
    done: AtomicBool,
    code: Mutex<Option<String>>,
}

/// No 0/O or 1/I/L: the code is read off a terminal and typed by hand.
const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";

impl SetupGate {
    /// `has_users` comes from the database at start-up; without users a code is generated.
    pub fn new(has_users: bool) -> Self {
        let code = (!has_users).then(|| {
            let mut rng = rand::rng();
            let mut pick = |n: usize| -> String {
                (0..n)
                    .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
                    .collect()
            };
            format!("{}-{}", pick(4), pick(4))
        });
        Self {
            done: AtomicBool::new(has_users),
            code: Mutex::new(code),
        }
    }

    pub fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// The code to print at start-up (None once set up).
    pub fn code(&self) -> Option<String> {
        self.code.lock().ok().and_then(|c| c.clone())
    }

    /// Compares in constant time; case and surrounding spaces do not matter.
    pub fn code_matches(&self, given: &str) -> bool {
        let given = given.trim().to_ascii_uppercase();
        match self.code.lock().ok().and_then(|c| c.clone()) {
            Some(code) => bool::from(code.as_bytes().ct_eq(given.as_bytes())),
            None => false,
        }
    }

    /// Called once the first admin exists: the code is burnt.
    pub fn mark_done(&self) {
        self.done.store(true, Ordering::Release);
        if let Ok(mut c) = self.code.lock() {
            *c = None;
        }
    }
}
