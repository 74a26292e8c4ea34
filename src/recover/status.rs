//! `recover status`: the sign-in settings, the providers and every account, as text.

use hallpass::config::Config;
use hallpass::domain::User;
use hallpass::domain::sso::Source;
use hallpass::service::recovery::Overview;

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

/// The readable report of `recover status`.
pub(super) fn render_status(config: &Config, o: &Overview) -> String {
    let mut out = format!(
        "Hallpass recovery status (database {})\n\nSign-in settings\n",
        config.database.url
    );
    let m = &o.modes;
    let why = if m.overridden {
        "HALLPASS_SSO_DISABLE_OVERRIDE is set"
    } else if !m.stored_sso {
        "SSO login is off"
    } else {
        "no SSO provider is enabled"
    };
    let local = if m.local == m.stored_local {
        on_off(m.local).to_owned()
    } else {
        format!(
            "{} as stored, {} in effect ({why})",
            on_off(m.stored_local),
            on_off(m.local)
        )
    };
    let stored_sso = match o.settings.sso_enabled {
        Some(b) => on_off(b).to_owned(),
        None if m.stored_sso => {
            "on (not set: on because providers come from the environment)".to_owned()
        }
        None => "off (not set: off while no provider comes from the environment)".to_owned(),
    };
    let sso = if m.sso == m.stored_sso {
        stored_sso
    } else {
        format!("{stored_sso} as stored, off in effect ({why})")
    };
    let registration = match (
        o.settings.registration_enabled,
        o.settings.auto_approve_registrations,
    ) {
        (false, _) => "off".to_owned(),
        (true, false) => "on (new accounts wait for approval)".to_owned(),
        (true, true) => "on (new accounts are active at once)".to_owned(),
    };
    out.push_str(&format!("  Password sign-in  {local}\n"));
    out.push_str(&format!("  SSO login         {sso}\n"));
    out.push_str(&format!("  Registration      {registration}\n"));
    out.push_str(&format!(
        "  Forward-auth      {} (auth.proxy.enabled in the configuration)\n",
        on_off(config.auth.proxy.enabled)
    ));
    out.push_str(&format!(
        "  Break-glass admin {} (HALLPASS_ADMIN_KEY in this environment)\n",
        if config.env_auth.break_glass.is_some() {
            "set"
        } else {
            "not set"
        }
    ));

    out.push_str("\nSSO providers\n");
    if o.providers.is_empty() {
        out.push_str("  (none)\n");
    } else {
        let rows: Vec<Vec<String>> = o
            .providers
            .iter()
            .map(|p| {
                let source = match (p.source, p.shadowed) {
                    (Source::Env, _) => "env",
                    (Source::Ui, false) => "stored",
                    (Source::Ui, true) => "stored (hidden by env)",
                };
                vec![
                    p.id.clone(),
                    source.to_owned(),
                    yes_no(p.enabled),
                    p.label.clone(),
                    p.issuer.clone(),
                    p.client_id.clone(),
                    p.policy.clone(),
                    if p.has_secret { "set" } else { "none" }.to_owned(),
                ]
            })
            .collect();
        table(
            &mut out,
            &[
                "ID",
                "SOURCE",
                "ENABLED",
                "LABEL",
                "ISSUER",
                "CLIENT ID",
                "POLICY",
                "CLIENT SECRET",
            ],
            &rows,
        );
    }

    out.push_str(&format!("\nAccounts ({})\n", o.accounts.len()));
    if o.accounts.is_empty() {
        out.push_str("  (none)\n");
    } else {
        let rows: Vec<Vec<String>> = o
            .accounts
            .iter()
            .map(|a| {
                let u = &a.user;
                let links: Vec<String> = a
                    .identities
                    .iter()
                    .map(|i| format!("{}:{}", i.provider, i.subject))
                    .collect();
                vec![
                    u.username.clone(),
                    u.role.to_string(),
                    if u.deleted_at.is_some() {
                        "deleted".to_owned()
                    } else {
                        u.status.to_string()
                    },
                    yes_no(u.password_hash.is_some()),
                    if links.is_empty() {
                        "-".to_owned()
                    } else {
                        links.join(", ")
                    },
                    u.last_login_at.map_or_else(|| "never".to_owned(), when),
                ]
            })
            .collect();
        table(
            &mut out,
            &[
                "USERNAME",
                "ROLE",
                "STATUS",
                "PASSWORD",
                "LINKED IDENTITIES",
                "LAST SIGN-IN",
            ],
            &rows,
        );
    }

    let admins: Vec<&User> = o
        .accounts
        .iter()
        .map(|a| &a.user)
        .filter(|u| u.is_active_admin())
        .collect();
    out.push('\n');
    if admins.is_empty() {
        out.push_str(
            "No active admin. Create one: hallpass recover create-admin --username NAME\n",
        );
    } else {
        let names: Vec<&str> = admins.iter().map(|u| u.username.as_str()).collect();
        out.push_str(&format!("Active admins: {}\n", names.join(", ")));
        if admins.iter().all(|u| u.password_hash.is_none()) {
            out.push_str(&format!(
                "No active admin has a password. Give one a password: hallpass recover \
                 reset-password --username {}\n",
                names.first().copied().unwrap_or("NAME")
            ));
        }
    }
    if !m.local {
        out.push_str("Password sign-in is off. Turn it back on: hallpass recover enable-local\n");
    }
    out
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_owned()
}

/// A unix time as `2025-01-31 17:05 UTC`.
fn when(ts: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp(ts)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| ts.to_string())
}

/// Appends an aligned table, indented by two spaces.
fn table(out: &mut String, head: &[&str], rows: &[Vec<String>]) {
    let widths: Vec<usize> = head
        .iter()
        .enumerate()
        .map(|(i, h)| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .chain([h.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut line = |cells: Vec<&str>| {
        let mut l = String::from(" ");
        for (cell, width) in cells.iter().zip(&widths) {
            l.push(' ');
            l.push_str(cell);
            l.push_str(&" ".repeat(width.saturating_sub(cell.chars().count()) + 1));
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(head.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}
