//! What the subcommands ask on the terminal: a typed confirmation, a new password.

use std::io::{self, BufRead, Write};

use hallpass::domain::Password;

use super::Failure;

/// Asks on the terminal to type `expected`; anything else cancels.
pub(super) fn confirm(what: &str, expected: &str) -> Result<(), Failure> {
    eprintln!("{what}");
    eprint!("Type {expected} to confirm: ");
    let _ = io::stderr().flush();
    let mut line = String::new();
    io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Failure::Failed(format!("cannot read the confirmation: {e}")))?;
    if line.trim() == expected {
        Ok(())
    } else {
        Err(Failure::Refused(
            "not confirmed: nothing was changed".into(),
        ))
    }
}

/// The new password: the first line of stdin (without its line ending), or asked twice on
/// the terminal without echo. Checked by the same rules as everywhere else.
pub(super) fn new_password(from_stdin: bool, username: &str) -> Result<Password, Failure> {
    let unreadable = |e: io::Error| Failure::Failed(format!("cannot read the password: {e}"));
    if from_stdin {
        let mut line = String::new();
        let n = io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(unreadable)?;
        if n == 0 {
            return Err(Failure::Refused(
                "--password-stdin: stdin was empty; send the password as one line".into(),
            ));
        }
        let line = line.strip_suffix('\n').unwrap_or(&line);
        let line = line.strip_suffix('\r').unwrap_or(line);
        return Password::parse(line).map_err(Failure::Refused);
    }
    let first =
        rpassword::prompt_password(format!("New password for {username}: ")).map_err(unreadable)?;
    Password::parse(&first).map_err(Failure::Refused)?;
    let second = rpassword::prompt_password("Type it again: ").map_err(unreadable)?;
    Password::parse_confirmed(&first, &second).map_err(|(_, m)| Failure::Refused(m))
}
