//! The first-run state: whether an admin exists, and the one-time setup code.
//!
//! The wizard always asks for the code. Nothing about a request proves that a person at this
//! machine sent it: a reverse proxy on the same host makes every visitor a loopback peer,
//! with or without forwarding headers, and a DNS-rebinding page runs in the owner's own
//! browser. The code is printed in the log at start-up and by `hallpass setup-code`, and
//! kept in the database so that every process on it asks for the same one.

use super::Refusal;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use rand::Rng;
use subtle::ConstantTimeEq;

use super::accounts::{self, NewAdmin};
use super::passwords::PasswordHasher;
use super::rate_limit::{Action, Attempt, RateLimiter};
use super::{Actor, ServiceError};
use crate::db::{self, DbPool};
use crate::domain::{FieldErrors, User};

/// What the wizard says next to a wrong code.
pub const WRONG_CODE: &str = "The setup code is not correct. It is printed in the server log at start-up; `hallpass setup-code` prints it too.";

/// Shared by every request: cheap to ask "is this instance set up?" without a query.
#[derive(Debug)]
pub struct SetupGate {
    done: AtomicBool,
    code: Mutex<Option<String>>,
}

/// No 0/O or 1/I/L: the code is read off a terminal and typed by hand.
const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";

impl SetupGate {
    /// `code` is the instance's setup code ([`ensure_code`]); `None` once set up.
    pub fn new(code: Option<String>) -> Self {
        Self {
            done: AtomicBool::new(code.is_none()),
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

    /// Compares in constant time; case, spaces and the hyphen do not matter (see
    /// [`normalize_code`]).
    pub fn code_matches(&self, given: &str) -> bool {
        let given = normalize_code(given);
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

/// The code as typed, in the printed form where it is obviously meant: `abcd efgh`,
/// `ABCDEFGH` and ` ABCD–EFGH ` (any dash, spaces, lowercase) are all `ABCD-EFGH`. Eight
/// letters and digits around anything else are still compared as typed, and fail.
fn normalize_code(given: &str) -> String {
    let kept: String = given
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '‐' | '‑' | '–' | '—' | '_'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if kept.len() == 8 && kept.chars().all(|c| c.is_ascii_alphanumeric()) {
        format!("{}-{}", &kept[..4], &kept[4..])
    } else {
        given.trim().to_ascii_uppercase()
    }
}

/// A fresh code: `ABCD-EFGH`, 40 bits from an alphabet that reads unambiguously.
fn new_code() -> String {
    let mut rng = rand::rng();
    let mut pick = |n: usize| -> String {
        (0..n)
            .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
            .collect()
    };
    format!("{}-{}", pick(4), pick(4))
}

/// The instance's setup code, made and stored if it has none yet; `None` once any account
/// exists.
pub async fn ensure_code(db: &DbPool) -> Result<Option<String>, ServiceError> {
    let candidate = new_code();
    db.run(move |conn| {
        db::write_tx(conn, |conn| {
            if db::users::count(conn)? > 0 {
                return Ok(None);
            }
            Ok(Some(db::settings::ensure_setup_code(conn, &candidate)?))
        })
    })
    .await
}

/// What claiming the instance needs.
pub struct Claim<'a> {
    pub code: &'a str,
    /// The admin's fields, parsed (or what was wrong with them).
    pub admin: Result<NewAdmin, FieldErrors>,
    pub ip: IpAddr,
}

/// The wizard's submit: checks the code (a wrong one counts against the client's brute-force
/// limits like a wrong password), then creates the first admin and burns the code.
pub async fn claim(
    db: &DbPool,
    hasher: &PasswordHasher,
    limiter: &RateLimiter,
    gate: &SetupGate,
    claim: Claim<'_>,
) -> Result<User, ServiceError> {
    let attempt = Attempt::new(Action::Setup, claim.ip, None);
    let actor = Actor {
        ip: Some(claim.ip.to_string()),
        ..Actor::system("setup-wizard")
    };
    let work = async {
        let code_ok = gate.code_matches(claim.code);
        match claim.admin {
            Ok(admin) if code_ok => accounts::create_first_admin(db, hasher, admin, actor).await,
            parsed => {
                let mut errors = parsed.err().unwrap_or_default();
                if !code_ok {
                    errors.add("setup_code", WRONG_CODE);
                }
                Err(ServiceError::Validation(errors))
            }
        }
    };
    let result = limiter.guard(attempt, work).await;
    if matches!(
        result,
        Ok(_) | Err(ServiceError::Refused(Refusal::AlreadySetUp))
    ) {
        gate.mark_done();
    }
    result
}

/// What the setup page's "Restore from backup" needs.
pub struct RestoreClaim {
    pub code: String,
    /// The uploaded file (already capped by `backup.upload_limit`).
    pub backup: Vec<u8>,
    pub ip: IpAddr,
}

/// What a restore from the setup page did, for the page that follows.
#[derive(Debug, Clone)]
pub struct RestoredInstance {
    pub restored: super::backup::Restored,
    pub header: super::backup::Header,
    /// What to tell the admin about the server secret, if anything.
    pub secret_message: Option<String>,
}

/// The setup page's "Restore from backup": the same code as the wizard (a wrong one counts
/// against the client's limits), then the same restore as `hallpass restore`, which loads
/// only into an instance without accounts — checked again inside its transaction, so a
/// wizard finishing at the same moment makes one of the two fail. Problems with the file are
/// reported on the `backup` field; nothing is changed then.
pub async fn restore(
    db: &DbPool,
    limiter: &RateLimiter,
    gate: &SetupGate,
    secret: &crate::secret::ServerSecret,
    data_dir: &std::path::Path,
    claim: RestoreClaim,
) -> Result<RestoredInstance, ServiceError> {
    use super::backup::{self, BackupError};
    if gate.is_done() {
        return Err(Refusal::AlreadySetUp.into());
    }
    let attempt = Attempt::new(Action::Setup, claim.ip, None);
    let code_ok = gate.code_matches(&claim.code);
    limiter
        .guard(attempt, async {
            if code_ok {
                Ok(())
            } else {
                Err(ServiceError::Validation(FieldErrors::single(
                    "setup_code",
                    WRONG_CODE,
                )))
            }
        })
        .await?;
    let on_field = |e: BackupError| match e {
        BackupError::NotEmpty { .. } => ServiceError::Refused(Refusal::AlreadySetUp),
        BackupError::Db(d) => ServiceError::Db(d),
        other => ServiceError::Validation(FieldErrors::single(
            "backup",
            format!("{other}. Nothing was changed."),
        )),
    };
    let backend = db.backend();
    let (header, restored) = db
        .run(move |conn| {
            let input: Box<dyn std::io::Read + Send> = Box::new(std::io::Cursor::new(claim.backup));
            let mut reader = backup::open_reader(input, false)?;
            let header = backup::read_header(&mut reader, backend)?;
            let restored = backup::restore(conn, &mut reader, false, &mut |_, _| {})?;
            Ok::<_, BackupError>((header, restored))
        })
        .await
        .map_err(on_field)?;
    if restored.users > 0 {
        gate.mark_done();
    }
    let note = backup::secret_note(&header, secret, data_dir, crate::secret::from_environment())
        .map_err(on_field)?;
    tracing::warn!(
        tables = restored.tables,
        rows = restored.rows,
        users = restored.users,
        from = %header.created_at,
        client = %claim.ip,
        "instance restored from a backup on the setup page"
    );
    Ok(RestoredInstance {
        secret_message: note.message(&restored, data_dir),
        restored,
        header,
    })
}

#[cfg(test)]
mod code_tests {
    use super::{SetupGate, normalize_code};

    #[test]
    fn a_code_typed_with_spaces_or_without_the_hyphen_is_the_code() {
        let gate = SetupGate::new(Some("ABCD-EF23".to_owned()));
        for typed in [
            "ABCD-EF23",
            "abcd-ef23",
            " ABCD EF23 ",
            "ABCDEF23",
            "abcd – ef23",
            "AB CD-EF 23",
        ] {
            assert!(gate.code_matches(typed), "{typed:?}");
        }
        for typed in ["ABCD-EF24", "ABCD-EF2", "ABCD.EF23", "", "ABCD-EF23X"] {
            assert!(!gate.code_matches(typed), "{typed:?}");
        }
        assert_eq!(normalize_code("wxyz9876"), "WXYZ-9876");
    }
}
