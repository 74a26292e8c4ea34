//! The common subset of both schemas, written by hand (see the migrations).

diesel::table! {
    users (id) {
        id -> BigInt,
        username -> Text,
        username_key -> Text,
        email -> Nullable<Text>,
        email_key -> Nullable<Text>,
        display_name -> Nullable<Text>,
        role -> Text,
        status -> Text,
        password_hash -> Nullable<Text>,
        session_version -> BigInt,
        created_at -> BigInt,
        updated_at -> BigInt,
        last_login_at -> Nullable<BigInt>,
        created_by -> Nullable<BigInt>,
        deleted_at -> Nullable<BigInt>,
        search_key -> Text,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        user_id -> Nullable<BigInt>,
        data -> Text,
        expires_at -> BigInt,
        created_at -> BigInt,
        signed_in_at -> Nullable<BigInt>,
        last_seen_at -> Nullable<BigInt>,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
    }
}

diesel::table! {
    settings (id) {
        id -> Integer,
        local_login_enabled -> Integer,
        registration_enabled -> Integer,
        updated_at -> BigInt,
        auto_approve_registrations -> Integer,
        sso_enabled -> Nullable<Integer>,
        proxy_preset -> Nullable<Text>,
        break_glass_admin -> Integer,
        proxy_preset_previous -> Nullable<Text>,
        setup_code -> Nullable<Text>,
        rules_version -> BigInt,
        second_factor_required -> Text,
        second_factor_providers -> Text,
        second_factor_after_proxy -> Integer,
    }
}

diesel::table! {
    audit_events (id) {
        id -> BigInt,
        at -> BigInt,
        actor_id -> Nullable<BigInt>,
        actor -> Text,
        action -> Text,
        target -> Nullable<Text>,
        ip -> Nullable<Text>,
        outcome -> Text,
        detail -> Nullable<Text>,
    }
}

diesel::table! {
    api_keys (id) {
        id -> BigInt,
        user_id -> BigInt,
        name -> Text,
        prefix -> Text,
        key_hmac -> Text,
        created_at -> BigInt,
        last_used_at -> Nullable<BigInt>,
        expires_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    oidc_providers (id) {
        id -> Text,
        label -> Text,
        issuer -> Text,
        client_id -> Text,
        client_secret -> Nullable<Text>,
        scopes -> Text,
        subject_claim -> Text,
        username_claim -> Text,
        email_claim -> Text,
        policy -> Text,
        enabled -> Integer,
        previous -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
        groups_claim -> Nullable<Text>,
    }
}

diesel::table! {
    identities (id) {
        id -> BigInt,
        user_id -> BigInt,
        provider -> Text,
        issuer -> Text,
        subject -> Text,
        email -> Nullable<Text>,
        display_name -> Nullable<Text>,
        created_at -> BigInt,
        last_login_at -> Nullable<BigInt>,
    }
}

diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(identities -> users (user_id));
diesel::joinable!(api_keys -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(
    users,
    sessions,
    settings,
    audit_events,
    api_keys,
    oidc_providers,
    identities
);

diesel::table! {
    oidc_flows (state_hash) {
        state_hash -> Text,
        binding -> Text,
        provider -> Text,
        fingerprint -> Text,
        nonce -> Text,
        pkce_verifier -> Text,
        purpose -> Text,
        link_user_id -> Nullable<BigInt>,
        next -> Text,
        redirect_uri -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    groups (id) {
        id -> BigInt,
        name -> Text,
        name_key -> Text,
        description -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    group_members (group_id, user_id) {
        group_id -> BigInt,
        user_id -> BigInt,
        source -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    apps (id) {
        id -> BigInt,
        name -> Text,
        name_key -> Text,
        url -> Nullable<Text>,
        icon -> Nullable<Text>,
        hosts -> Text,
        paths -> Text,
        access -> Text,
        roles -> Text,
        viewers_read_only -> Integer,
        source -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    app_groups (app_id, group_id) {
        app_id -> BigInt,
        group_id -> BigInt,
    }
}

diesel::table! {
    app_users (app_id, user_id) {
        app_id -> BigInt,
        user_id -> BigInt,
    }
}

diesel::joinable!(group_members -> groups (group_id));
diesel::joinable!(group_members -> users (user_id));
diesel::joinable!(app_groups -> apps (app_id));
diesel::joinable!(app_groups -> groups (group_id));
diesel::joinable!(app_users -> apps (app_id));
diesel::joinable!(app_users -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(
    users,
    groups,
    group_members,
    apps,
    app_groups,
    app_users
);

diesel::table! {
    rate_limits (action, client, account) {
        action -> Text,
        client -> Text,
        account -> Text,
        window_start -> BigInt,
        failures -> Integer,
        label -> Nullable<Text>,
        lifted_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    user_totp (user_id) {
        user_id -> BigInt,
        secret -> Text,
        confirmed_at -> Nullable<BigInt>,
        last_step -> Nullable<BigInt>,
        created_at -> BigInt,
    }
}

diesel::table! {
    recovery_codes (id) {
        id -> BigInt,
        user_id -> BigInt,
        code_hmac -> Text,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    invites (id) {
        id -> BigInt,
        token_hmac -> Text,
        email -> Nullable<Text>,
        username -> Nullable<Text>,
        role -> Text,
        needs_approval -> Integer,
        created_by -> Nullable<BigInt>,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
        used_by -> Nullable<BigInt>,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    invite_groups (invite_id, group_id) {
        invite_id -> BigInt,
        group_id -> BigInt,
    }
}

diesel::joinable!(invite_groups -> invites (invite_id));
diesel::joinable!(invite_groups -> groups (group_id));
diesel::allow_tables_to_appear_in_same_query!(invites, invite_groups, groups);

diesel::table! {
    passkeys (id) {
        id -> BigInt,
        user_id -> BigInt,
        name -> Text,
        credential_id -> Text,
        user_handle -> Text,
        passkey -> Text,
        created_at -> BigInt,
        last_used_at -> Nullable<BigInt>,
    }
}
