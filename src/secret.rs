//! The server secret: the HMAC key under which API keys are stored.
//!
//! It lives outside the database on purpose, so a leaked database dump (or backup) alone does
//! not let anyone check guesses against the stored key hashes. `HALLPASS_SECRET_KEY_FILE` (a
//! file holding the value, e.g. a Docker secret) or `HALLPASS_SECRET_KEY` wins when set;
//! otherwise the file `secret.key` in `server.data_dir` is read, and created with 32 random
//! bytes (mode 0600) on first start. Losing it makes every API key stop working.
//!
//! This module also owns [`env_or_file`] and [`read_secret_file`]: every secret that can come
//! from the environment can come from a file named by the same variable plus `_FILE`.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretSlice};
use sha2::Sha256;

/// The environment variable that overrides the secret file.
pub const ENV_VAR: &str = "HALLPASS_SECRET_KEY";
/// Suffix of the variable that names a file holding a secret instead (`HALLPASS_ADMIN_KEY` →
/// `HALLPASS_ADMIN_KEY_FILE`).
pub const FILE_SUFFIX: &str = "_FILE";
/// The file name inside `server.data_dir`.
pub const FILE_NAME: &str = "secret.key";
/// Shortest secret accepted, in bytes (characters for the environment variable).
pub const MIN_LEN: usize = 32;

/// Why the secret could not be loaded; each is worded for the operator.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "{var} must be at least {MIN_LEN} characters long (it has {len}); generate one with `openssl rand -base64 48`"
    )]
    EnvTooShort { var: String, len: usize },
    /// `HALLPASS_SECRET_KEY_FILE` cannot be read or is empty.
    #[error("{0}")]
    EnvFile(String),
    #[error(
        "the server secret {path} is shorter than {MIN_LEN} bytes: restore it from a backup, or delete it to generate a new one (every existing API key then stops working)"
    )]
    FileTooShort { path: PathBuf },
    #[error("cannot read or create the server secret {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The secret bytes; never printed, zeroed on drop.
pub struct ServerSecret(SecretSlice<u8>);

impl fmt::Debug for ServerSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerSecret([REDACTED])")
    }
}

impl ServerSecret {
    /// `env` is the value of [`ENV_VAR`] when set; it (or `HALLPASS_SECRET_KEY_FILE`, read
    /// from the process environment) wins over the file in `data_dir`.
    pub fn load(data_dir: &Path, env: Option<String>) -> Result<Self, SecretError> {
        Self::load_with(data_dir, |k| {
            if k == ENV_VAR {
                env.clone()
            } else {
                std::env::var(k).ok()
            }
        })
    }

    /// As [`Self::load`], reading [`ENV_VAR`] and its `_FILE` twin through `get`.
    pub fn load_with(
        data_dir: &Path,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SecretError> {
        match env_or_file(&get, ENV_VAR).map_err(SecretError::EnvFile)? {
            Some(value) => Self::from_env_value(value),
            None => Self::from_file(data_dir),
        }
    }

    fn from_env_value(value: EnvSecret) -> Result<Self, SecretError> {
        let len = value.value.chars().count();
        if len < MIN_LEN {
            return Err(SecretError::EnvTooShort {
                var: value.source,
                len,
            });
        }
        Ok(Self(value.value.into_bytes().into()))
    }

    fn from_file(data_dir: &Path) -> Result<Self, SecretError> {
        let path = data_dir.join(FILE_NAME);
        let io = |source| SecretError::Io {
            path: path.clone(),
            source,
        };
        match std::fs::read(&path) {
            Ok(bytes) if bytes.len() >= MIN_LEN => {
                warn_if_shared(&path);
                return Ok(Self(bytes.into()));
            }
            Ok(_) => return Err(SecretError::FileTooShort { path }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        std::fs::create_dir_all(data_dir).map_err(io)?;
        let mut bytes = vec![0_u8; MIN_LEN];
        rand::rng().fill_bytes(&mut bytes);
        // Written to a private temporary file, then linked into place: a second instance
        // starting at the same moment never reads a half-written secret, and whichever
        // link lands first is the secret both use.
        let tmp = data_dir.join(format!(".{FILE_NAME}.{}.tmp", std::process::id()));
        let written = write_private(&tmp, &bytes).and_then(|()| std::fs::hard_link(&tmp, &path));
        let _ = std::fs::remove_file(&tmp);
        match written {
            Ok(()) => {
                tracing::info!(path = %path.display(), "created a new server secret (back it up with the database)");
                Ok(Self(bytes.into()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let bytes = std::fs::read(&path).map_err(io)?;
                if bytes.len() < MIN_LEN {
                    return Err(SecretError::FileTooShort { path });
                }
                Ok(Self(bytes.into()))
            }
            Err(e) => Err(io(e)),
        }
    }

    /// A 32-byte key for one purpose, derived from the secret (HMAC-SHA256 of the label), so
    /// no two uses share a key.
    pub fn derive_key(&self, label: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        if let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.0.expose_secret()) {
            mac.update(b"hallpass key derivation\0");
            mac.update(label.as_bytes());
            out.copy_from_slice(&mac.finalize().into_bytes());
        }
        out
    }

    /// A public fingerprint of the secret (16 hex digits, one-way: derived, never the
    /// secret). Backups record it so a restore can tell whether the target's secret is the
    /// one the stored API keys and client secrets depend on.
    pub fn fingerprint(&self) -> String {
        let key = self.derive_key("backup fingerprint");
        key[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The secret's bytes, for `hallpass backup --include-secret` only.
    pub fn expose_bytes(&self) -> &[u8] {
        self.0.expose_secret()
    }

    /// A secret carried in a backup; `None` when it is too short to be one.
    pub fn from_bytes(bytes: Vec<u8>) -> Option<Self> {
        (bytes.len() >= MIN_LEN).then(|| Self(bytes.into()))
    }

    /// Hex HMAC-SHA256 of `message` under the secret.
    pub fn hmac_hex(&self, message: &[u8]) -> String {
        // HMAC accepts keys of any length, so this cannot fail.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.0.expose_secret()) else {
            return String::new();
        };
        mac.update(message);
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let digest = mac.finalize().into_bytes();
        let mut out = String::with_capacity(digest.len() * 2);
        for b in digest {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        out
    }
}

/// True when the environment (`HALLPASS_SECRET_KEY` or its `_FILE` twin) supplies the
/// secret, so `secret.key` in the data directory is not the one in force.
pub fn from_environment() -> bool {
    let get = |k: &str| std::env::var(k).ok();
    matches!(env_or_file(&get, ENV_VAR), Ok(Some(_)))
}

/// Writes `secret` as `secret.key` in `data_dir` (mode 0600), keeping a different previous
/// one beside it as `secret.key.<unix time>.old`; returns that path when there was one.
pub fn replace_file(data_dir: &Path, secret: &ServerSecret) -> std::io::Result<Option<PathBuf>> {
    std::fs::create_dir_all(data_dir)?;
    let path = data_dir.join(FILE_NAME);
    let kept = match std::fs::read(&path) {
        Ok(old) if old == secret.expose_bytes() => return Ok(None),
        Ok(_) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let old = data_dir.join(format!("{FILE_NAME}.{now}.old"));
            std::fs::rename(&path, &old)?;
            Some(old)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let tmp = data_dir.join(format!(".{FILE_NAME}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    write_private(&tmp, secret.expose_bytes())?;
    std::fs::rename(&tmp, &path)?;
    Ok(kept)
}

/// A secret from the environment, and the variable it came from (for messages).
#[derive(Clone, PartialEq, Eq)]
pub struct EnvSecret {
    pub value: String,
    /// `VAR` or `VAR_FILE`.
    pub source: String,
}

impl fmt::Debug for EnvSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EnvSecret({}: [REDACTED])", self.source)
    }
}

/// The secret `var`, read through `get` (the process environment in production): from the
/// file named by `var_FILE` when that is set — it wins over `var`, as it keeps the secret
/// out of `ps`, `docker inspect` and the like — else `var` itself. Empty values count as
/// unset. An unreadable or empty file is an error naming the variable and the path.
pub fn env_or_file(
    get: &impl Fn(&str) -> Option<String>,
    var: &str,
) -> Result<Option<EnvSecret>, String> {
    let file_var = format!("{var}{FILE_SUFFIX}");
    if let Some(path) = get(&file_var).filter(|p| !p.trim().is_empty()) {
        let value = read_secret_file(&file_var, Path::new(path.trim()))?;
        return Ok(Some(EnvSecret {
            value,
            source: file_var,
        }));
    }
    Ok(get(var).filter(|v| !v.is_empty()).map(|value| EnvSecret {
        value,
        source: var.to_owned(),
    }))
}

/// Reads a secret handed over in a file (Docker and Compose secrets, systemd credentials, a
/// Kubernetes secret volume). The trailing newline that editors and `echo` add is not part
/// of the secret and is removed; nothing else is. `key` (the variable or configuration key
/// that named the file) and the path are in every error; the contents never are.
pub fn read_secret_file(key: &str, path: &Path) -> Result<String, String> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("{key}: cannot read {}: {e}", path.display()))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| format!("{key}: {} is not UTF-8 text", path.display()))?;
    let value = text.trim_end_matches(['\n', '\r']);
    if value.is_empty() {
        return Err(format!("{key}: {} is empty", path.display()));
    }
    Ok(value.to_owned())
}

/// The file should be readable by Hallpass alone; say so when it is not (but start anyway:
/// the operator may have reasons, e.g. a group-readable backup mount).
fn warn_if_shared(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                path = %path.display(),
                "the server secret is readable by other users; run `chmod 600` on it"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn env_value_must_be_long_enough() {
        assert!(matches!(
            ServerSecret::load(Path::new("/nonexistent"), Some("short".into())),
            Err(SecretError::EnvTooShort { len: 5, .. })
        ));
        let s = ServerSecret::load(Path::new("/nonexistent"), Some("x".repeat(32))).unwrap();
        assert_eq!(format!("{s:?}"), "ServerSecret([REDACTED])");
        assert_eq!(s.hmac_hex(b"a").len(), 64);
    }

    #[test]
    fn file_is_created_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("nested");
        let a = ServerSecret::load(&data, None).unwrap();
        let b = ServerSecret::load(&data, None).unwrap();
        assert_eq!(a.hmac_hex(b"k"), b.hmac_hex(b"k"));
        assert_eq!(std::fs::read(data.join(FILE_NAME)).unwrap().len(), MIN_LEN);
        std::fs::write(data.join(FILE_NAME), b"tiny").unwrap();
        assert!(matches!(
            ServerSecret::load(&data, None),
            Err(SecretError::FileTooShort { .. })
        ));
    }

    fn env(pairs: &[(&str, String)]) -> impl Fn(&str) -> Option<String> + use<> {
        let m: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn a_secret_file_wins_and_loses_only_its_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        std::fs::write(&path, " spaced secret \r\n").unwrap();
        let get = env(&[
            ("X", "from-the-variable".into()),
            ("X_FILE", path.display().to_string()),
        ]);
        let s = env_or_file(&get, "X").unwrap().unwrap();
        assert_eq!(
            (s.value.as_str(), s.source.as_str()),
            (" spaced secret ", "X_FILE")
        );
        assert!(!format!("{s:?}").contains("spaced"));
        let get = env(&[("X", "v".into())]);
        let s = env_or_file(&get, "X").unwrap().unwrap();
        assert_eq!((s.value.as_str(), s.source.as_str()), ("v", "X"));
        let get = env(&[("X", String::new())]);
        assert_eq!(env_or_file(&get, "X"), Ok(None));
    }

    #[test]
    fn an_unreadable_or_empty_secret_file_names_the_variable_and_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let get = env(&[("X_FILE", missing.display().to_string())]);
        let e = env_or_file(&get, "X").unwrap_err();
        assert!(
            e.starts_with("X_FILE: cannot read ") && e.contains(&missing.display().to_string()),
            "{e}"
        );
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let e = read_secret_file("X_FILE", &empty).unwrap_err();
        assert!(e.contains("X_FILE") && e.ends_with("is empty"), "{e}");
    }

    #[test]
    fn the_server_secret_comes_from_its_file_variable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, format!("{}\n", "k".repeat(40))).unwrap();
        let data = dir.path().join("data");
        let from_file = ServerSecret::load_with(
            &data,
            env(&[
                ("HALLPASS_SECRET_KEY_FILE", path.display().to_string()),
                ("HALLPASS_SECRET_KEY", "v".repeat(40)),
            ]),
        )
        .unwrap();
        let direct = ServerSecret::load(Path::new("/nonexistent"), Some("k".repeat(40))).unwrap();
        assert_eq!(from_file.hmac_hex(b"m"), direct.hmac_hex(b"m"));
        assert!(!data.exists(), "no secret.key is created");
        std::fs::write(&path, "short\n").unwrap();
        let e = ServerSecret::load_with(
            &data,
            env(&[("HALLPASS_SECRET_KEY_FILE", path.display().to_string())]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("HALLPASS_SECRET_KEY_FILE must be at least 32"),
            "{e}"
        );
    }
}
