//! Instance settings: reading them, and changing them on behalf of an admin.

use super::{Actor, ServiceError};
use crate::db::{self, DbPool, audit, settings};
use crate::domain::audit::AuditAction;

pub use crate::db::settings::Settings;

/// The registration switches an admin can change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistrationSettings {
    /// Anyone may create an account at `/register`.
    pub registration_enabled: bool,
    /// New accounts start `active` instead of waiting for approval.
    pub auto_approve_registrations: bool,
}

/// The current settings.
pub async fn get(db: &DbPool) -> Result<Settings, ServiceError> {
    Ok(db.run(settings::get).await?)
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

/// Saves the registration settings in one locked transaction with a `settings.update` audit
/// event naming what changed. Returns the settings as they are afterwards.
pub async fn update(
    db: &DbPool,
    actor: Actor,
    new: RegistrationSettings,
) -> Result<Settings, ServiceError> {
    db.run(move |conn| {
        db::write_tx(conn, |conn| {
            let before = settings::get(conn)?;
            settings::set_registration(
                conn,
                new.registration_enabled,
                new.auto_approve_registrations,
            )?;
            let mut changes = Vec::new();
            if before.registration_enabled != new.registration_enabled {
                changes.push(format!(
                    "registration {} -> {}",
                    on_off(before.registration_enabled),
                    on_off(new.registration_enabled)
                ));
            }
            if before.auto_approve_registrations != new.auto_approve_registrations {
                changes.push(format!(
                    "auto_approve {} -> {}",
                    on_off(before.auto_approve_registrations),
                    on_off(new.auto_approve_registrations)
                ));
            }
            let detail = if changes.is_empty() {
                "no change".to_owned()
            } else {
                changes.join(", ")
            };
            audit::insert(
                conn,
                &audit::NewEvent {
                    actor_id: actor.user_id,
                    actor: &actor.name,
                    action: AuditAction::SettingsUpdate,
                    target: Some("instance"),
                    ip: actor.ip.as_deref(),
                    outcome: "success",
                    detail: Some(&detail),
                },
            )?;
            Ok(settings::get(conn)?)
        })
    })
    .await
}
