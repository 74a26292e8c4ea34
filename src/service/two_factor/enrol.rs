//! Setting up a second factor (a new secret, confirmed by one valid code, which hands out the
//! recovery codes once) and its removal by its owner.

use rand::RngCore;

use super::{ISSUER, code_hmac, now, open_secret, totp};
use crate::db::{self, DbPool, audit};
use crate::domain::audit::AuditAction;
use crate::domain::refusal::Missing;
use crate::domain::two_factor::{Code, RECOVERY_CODES, display_recovery_code, recovery_code};
use crate::domain::{FieldErrors, User};
use crate::secret::ServerSecret;
use crate::service::rate_limit::RateLimiter;
use crate::service::{Actor, Refusal, ServiceError};

/// What the enrolment page shows: the secret as text, the `otpauth://` link and its QR code.
pub struct Enrolment {
    /// Base32, in groups of four for reading aloud or typing.
    pub secret: String,
    pub uri: String,
    /// An `<svg>` element (no XML prolog: it goes inside the page).
    pub qr_svg: String,
}

/// Starts enrolment: a new random secret (160 bits, RFC 4226's recommendation), stored sealed
/// and unconfirmed, replacing an earlier unconfirmed one. Refused while a confirmed second
/// factor exists.
pub async fn start(
    db: &DbPool,
    secret: &ServerSecret,
    user: &User,
) -> Result<Enrolment, ServiceError> {
    if user.id == crate::env_auth::BREAK_GLASS_ID {
        return Err(Refusal::BreakGlassSecondFactor.into());
    }
    let mut raw = [0u8; 20];
    rand::rng().fill_bytes(&mut raw);
    let b32 = totp_rs::Secret::from(raw).to_base32();
    let sealed = crate::service::sso::seal(secret, &b32)
        .ok_or(ServiceError::Internal("could not encrypt the TOTP secret"))?;
    let uid = user.id;
    let started = db
        .run(move |conn| db::two_factor::start(conn, uid, &sealed))
        .await?;
    if !started {
        return Err(Refusal::SecondFactorEnabled.into());
    }
    enrolment(&b32, &user.username)
}

/// The enrolment in progress, if any (the page shown again after a wrong code).
pub async fn pending(
    db: &DbPool,
    secret: &ServerSecret,
    user: &User,
) -> Result<Option<Enrolment>, ServiceError> {
    let uid = user.id;
    let row = db.run(move |conn| db::two_factor::find(conn, uid)).await?;
    match row {
        Some(r) if r.confirmed_at.is_none() => {
            let raw = open_secret(secret, &r.sealed_secret)?;
            let b32 = totp_rs::Secret::from(raw).to_base32();
            enrolment(&b32, &user.username).map(Some)
        }
        _ => Ok(None),
    }
}

/// Confirms the enrolment in progress with one valid code and returns the ten recovery codes,
/// the only time they are shown (audited as `two_factor.enable`).
pub async fn confirm(
    db: &DbPool,
    secret: &ServerSecret,
    actor: Actor,
    user: &User,
    code: &str,
) -> Result<Vec<String>, ServiceError> {
    let uid = user.id;
    let row = db.run(move |conn| db::two_factor::find(conn, uid)).await?;
    let row = row
        .filter(|r| r.confirmed_at.is_none())
        .ok_or(ServiceError::from(Missing::SecondFactor))?;
    let totp = totp(open_secret(secret, &row.sealed_secret)?)?;
    let step = match Code::parse(code) {
        Some(Code::Totp(c)) => totp.check(&c, now()),
        _ => None,
    };
    let Some(step) = step.and_then(|s| i64::try_from(s).ok()) else {
        return Err(ServiceError::Validation(FieldErrors::single(
            "code",
            "That code does not match. Enter the six digits your app shows now.",
        )));
    };
    let codes: Vec<String> = (0..RECOVERY_CODES)
        .map(|_| {
            let mut r = [0u8; 10];
            rand::rng().fill_bytes(&mut r);
            recovery_code(r)
        })
        .collect();
    let hmacs: Vec<String> = codes.iter().map(|c| code_hmac(secret, uid, c)).collect();
    let target = user.username.clone();
    db.run(move |conn| {
        db::write_tx(conn, |conn| {
            if !db::two_factor::confirm(conn, uid, step)? {
                return Err(ServiceError::from(Missing::SecondFactor));
            }
            db::two_factor::replace_codes(conn, uid, &hmacs)?;
            record(conn, &actor, AuditAction::TwoFactorEnable, &target, None)
        })
    })
    .await?;
    Ok(codes.iter().map(|c| display_recovery_code(c)).collect())
}

/// Removes the caller's own second factor, proven by a current code or a recovery code
/// (counted by the rate limit like a sign-in code). Refused while the instance requires one.
pub async fn disable(
    db: &DbPool,
    secret: &ServerSecret,
    limiter: &RateLimiter,
    actor: Actor,
    user: &User,
    code: &str,
    ip: std::net::IpAddr,
) -> Result<(), ServiceError> {
    if code.trim().is_empty() {
        let e = FieldErrors::single("code", "Enter a current code or a recovery code.");
        return Err(ServiceError::Validation(e));
    }
    if super::status(db, user).await?.required {
        return Err(Refusal::SecondFactorRequired.into());
    }
    super::verify(db, secret, limiter, user, code, ip).await?;
    let (uid, target) = (user.id, user.username.clone());
    db.run(move |conn| {
        db::write_tx(conn, |conn| {
            if !db::two_factor::remove(conn, uid)? {
                return Err(ServiceError::from(Missing::SecondFactor));
            }
            record(conn, &actor, AuditAction::TwoFactorDisable, &target, None)
        })
    })
    .await
}

/// One audit event about `target`'s second factor.
pub(super) fn record(
    conn: &mut db::Conn,
    actor: &Actor,
    action: AuditAction,
    target: &str,
    detail: Option<&str>,
) -> Result<(), ServiceError> {
    audit::insert(
        conn,
        &audit::NewEvent {
            actor_id: actor.user_id,
            actor: &actor.name,
            action,
            target: Some(target),
            ip: actor.ip.as_deref(),
            outcome: "success",
            detail,
        },
    )?;
    Ok(())
}

fn enrolment(b32: &str, account: &str) -> Result<Enrolment, ServiceError> {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    let label = utf8_percent_encode(account, NON_ALPHANUMERIC);
    let uri = format!(
        "otpauth://totp/{ISSUER}:{label}?secret={b32}&issuer={ISSUER}&algorithm=SHA1&digits=6&period=30"
    );
    let qr = qrcode::QrCode::with_error_correction_level(uri.as_bytes(), qrcode::EcLevel::M)
        .map_err(|_| ServiceError::Internal("could not draw the QR code"))?;
    let svg = qr
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build();
    // The crate writes a standalone document; the page wants the element alone.
    let qr_svg = match svg.find("<svg") {
        Some(at) => svg[at..].to_owned(),
        None => svg,
    };
    let secret = b32
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    Ok(Enrolment {
        secret,
        uri,
        qr_svg,
    })
}
