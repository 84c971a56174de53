//! The security properties of accounts, each proven against the running server.

use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHasher, SaltString};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, Set};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tests::{Backend, PASSWORD, backend_tests, spawn_app, spawn_app_with};

async fn stored_user(app: &tests::TestApp, email: &str) -> entity::user::Model {
    entity::User::find()
        .filter(entity::user::Column::Email.eq(email))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap()
}

async fn passwords_are_stored_as_argon2id_at_the_owasp_minimum(backend: Backend) {
    let app = spawn_app(backend).await;
    app.reader("ada@example.com").await;

    let hash = stored_user(&app, "ada@example.com").await.password_hash;

    assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
    assert!(!hash.contains(PASSWORD));
}

async fn a_weaker_hash_is_upgraded_at_the_next_successful_login(backend: Backend) {
    let app = spawn_app(backend).await;
    app.reader("ada@example.com").await;
    let weak = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(4096, 1, 1, None).unwrap(),
    )
    .hash_password(
        PASSWORD.as_bytes(),
        &SaltString::encode_b64(b"sixteen byte slt").unwrap(),
    )
    .unwrap()
    .to_string();
    let mut user = stored_user(&app, "ada@example.com").await.into_active_model();
    user.password_hash = Set(weak.clone());
    user.update(&app.db).await.unwrap();

    assert_eq!(app.login("ada@example.com", "a wrong password!").await.status(), 401);
    assert_eq!(
        stored_user(&app, "ada@example.com").await.password_hash,
        weak,
        "no upgrade on a failed login"
    );
    assert_eq!(
        app.login("ada@example.com", PASSWORD).await.status(),
        200,
        "the old hash still works"
    );

    let upgraded = stored_user(&app, "ada@example.com").await.password_hash;
    assert!(upgraded.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{upgraded}");
    assert_eq!(
        app.login("ada@example.com", PASSWORD).await.status(),
        200,
        "and the new one works"
    );
}

async fn only_a_sha256_of_each_256_bit_token_is_stored(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.reader("ada@example.com").await;

    let stored: Vec<String> = entity::ApiToken::find()
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.token_hash)
        .collect();

    let digest: String = Sha256::digest(ada.token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(stored, vec![digest]);
    let random_part = ada.token.strip_prefix("bw_").unwrap();
    assert!(random_part.len() * 6 >= 256, "{} base64 characters", random_part.len());
}

async fn unknown_email_and_wrong_password_look_the_same(backend: Backend) {
    let app = spawn_app(backend).await;
    app.reader("ada@example.com").await;

    let unknown = app.login("nobody@example.com", PASSWORD).await;
    let (unknown_status, unknown_challenge) = (unknown.status(), unknown.headers()["www-authenticate"].clone());
    let unknown_body = unknown.text().await.unwrap();
    let wrong = app.login("ada@example.com", "not the right password").await;
    let (wrong_status, wrong_challenge) = (wrong.status(), wrong.headers()["www-authenticate"].clone());
    let wrong_body = wrong.text().await.unwrap();

    assert_eq!(unknown_status, 401);
    assert_eq!(
        (unknown_status, unknown_challenge, unknown_body),
        (wrong_status, wrong_challenge, wrong_body)
    );
}

/// Not a benchmark: a guard against the unknown-email path skipping the password
/// check, which would make it an order of magnitude faster than a wrong password.
async fn an_unknown_email_still_costs_one_password_verification(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.security.throttle.per_account_and_client = 1_000).await;
    app.reader("ada@example.com").await;
    let median = |mut xs: Vec<Duration>| {
        xs.sort();
        xs[xs.len() / 2]
    };
    let mut unknown = Vec::new();
    let mut wrong = Vec::new();
    for i in 0..5 {
        let started = Instant::now();
        app.login(&format!("nobody{i}@example.com"), "not the right password")
            .await;
        unknown.push(started.elapsed());
        let started = Instant::now();
        app.login("ada@example.com", "not the right password").await;
        wrong.push(started.elapsed());
    }
    let (unknown, wrong) = (median(unknown), median(wrong));
    let ratio = unknown.as_secs_f64() / wrong.as_secs_f64();
    assert!(
        (0.33..3.0).contains(&ratio),
        "unknown email {unknown:?} vs wrong password {wrong:?}"
    );
}

/// 30 clients failing to sign in at once, each within the throttle's limits: no more
/// hashes run at once than the budget allows, and every client gets its answer.
async fn no_more_password_hashes_run_at_once_than_the_budget_allows(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.security.hashing.concurrency = 2;
        s.security.hashing.wait = Duration::from_secs(60);
    })
    .await;
    let clients: Vec<_> = (0..30u8)
        .map(|i| {
            let client = app.from_address([127, 0, 3, i + 1]);
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                for attempt in 0..3 {
                    let email = format!("nobody{i}.{attempt}@example.com");
                    statuses.push(client.login(&email, "not the right password").await.status());
                }
                statuses
            })
        })
        .collect();
    for client in clients {
        for status in client.await.unwrap() {
            assert_eq!(status, 401);
        }
    }
    assert_eq!(
        app.hashing.peak_in_flight(),
        2,
        "the bound was reached and never passed"
    );
    assert_eq!(app.hashing.in_flight(), 0);
}

/// With every slot taken for longer than a request may wait, the request is refused
/// with a 503 to retry, not queued without bound; nothing is a 500.
async fn a_login_that_cannot_get_a_hashing_slot_in_time_is_a_503_to_retry(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.security.hashing.concurrency = 1;
        s.security.hashing.wait = Duration::from_millis(1);
    })
    .await;
    let attempts: Vec<_> = (0..20u8)
        .map(|i| {
            let client = app.from_address([127, 0, 4, i + 1]);
            tokio::spawn(async move { client.login("nobody@example.com", "not the right password").await })
        })
        .collect();
    let mut busy = 0;
    for attempt in attempts {
        let response = attempt.await.unwrap();
        match response.status().as_u16() {
            401 => {}
            503 => {
                busy += 1;
                assert_eq!(response.headers()["retry-after"], "1");
                let problem: Value = response.json().await.unwrap();
                assert_eq!(problem["status"], 503, "{problem}");
            }
            other => panic!("login answered {other}"),
        }
    }
    assert!(busy > 0, "20 logins at once never found the one slot busy");
    assert_eq!(app.hashing.peak_in_flight(), 1);
}

/// Spellings of one address that differ only in how the domain is written (full-width
/// letters, an ideographic full stop, a soft hyphen, a decomposed accent) are the same
/// account: a second registration is a 409, and each spelling signs in.
async fn equivalent_spellings_of_an_email_are_one_account(backend: Backend) {
    let app = spawn_app(backend).await;
    for first in ["ada@example.com", "bob@caf\u{e9}.com"] {
        assert_eq!(app.register(first, PASSWORD, "Reader").await.status(), 201, "{first}");
    }
    for same in [
        "ada@\u{ff45}\u{ff58}\u{ff41}\u{ff4d}\u{ff50}\u{ff4c}\u{ff45}.\u{ff43}\u{ff4f}\u{ff4d}",
        "ada@example\u{3002}com",
        "ada@exam\u{ad}ple.com",
        "bob@cafe\u{301}.com",
    ] {
        assert_eq!(app.register(same, PASSWORD, "Twin").await.status(), 409, "{same:?}");
        assert_eq!(app.login(same, PASSWORD).await.status(), 200, "{same:?} signs in");
    }
    assert_eq!(
        stored_user(&app, "bob@xn--caf-dma.com").await.email,
        "bob@xn--caf-dma.com"
    );
}

/// An address that lengthens when lower-cased and encoded is measured as stored: a
/// 422 naming the limit, never a 500 from the database's varchar(255).
async fn an_email_too_long_once_normalised_is_a_422(backend: Backend) {
    let app = spawn_app(backend).await;
    let label = "\u{130}".repeat(40);
    let email = format!("ada@{}.com", [label.as_str(); 5].join("."));
    assert!(email.chars().count() <= 255);

    let response = app.register(&email, PASSWORD, "Reader").await;

    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.unwrap();
    assert!(
        problem["errors"][0]["message"].as_str().unwrap().contains("255"),
        "{problem}"
    );
}

async fn repeated_logins_to_one_account_are_throttled_without_affecting_others(backend: Backend) {
    let app = spawn_app(backend).await;
    for email in ["ada@example.com", "grace@example.com"] {
        assert_eq!(app.register(email, PASSWORD, "Reader").await.status(), 201);
    }

    for _ in 0..5 {
        assert_eq!(
            app.login("ada@example.com", "wrong password, again").await.status(),
            401
        );
    }
    let throttled = app.login("ada@example.com", PASSWORD).await;

    assert_eq!(throttled.status(), 429);
    let retry_after: u64 = throttled.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(throttled.headers()["content-type"], "application/problem+json");
    assert_eq!(
        app.login("grace@example.com", PASSWORD).await.status(),
        200,
        "another account is unaffected"
    );
}

/// Respelling the address (case, full-width letters, a soft hyphen anywhere, an
/// ideographic full stop) names the same account, so it shares the account's limit:
/// there are endless spellings, and each must not buy five more guesses.
async fn respelling_an_email_does_not_reset_its_login_limit(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(app.register("ada@example.com", PASSWORD, "Ada").await.status(), 201);
    let spellings = [
        "ADA@example.com",
        "ada@\u{ff45}xample.com",
        "ada@ex\u{ad}ample.com",
        "ada@exa\u{ad}mple.com",
        "ada@example\u{3002}com",
    ];
    for spelling in spellings {
        assert_eq!(
            app.login(spelling, "wrong password, again").await.status(),
            401,
            "{spelling:?}"
        );
    }

    let sixth = app.login("ada@e\u{ad}xample.com", PASSWORD).await;

    assert_eq!(sixth.status(), 429, "a sixth spelling is the sixth attempt");
}

async fn guessing_from_one_address_does_not_lock_the_owner_out(backend: Backend) {
    let app = spawn_app(backend).await;
    app.reader("ada@example.com").await;
    let attacker = app.from_address([127, 0, 0, 66]);

    for _ in 0..5 {
        assert_eq!(attacker.login("ada@example.com", "a wild guess!").await.status(), 401);
    }

    assert_eq!(attacker.login("ada@example.com", PASSWORD).await.status(), 429);
    assert_eq!(
        app.login("ada@example.com", PASSWORD).await.status(),
        200,
        "Ada, from her own address, still signs in"
    );
}

async fn guessing_spread_over_many_addresses_meets_the_account_ceiling(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.security.throttle.per_account = 6).await;
    app.reader("ada@example.com").await;
    // `reader` logged in once from 127.0.0.1: five attempts left on the account.
    for last in 2..=6 {
        let guesser = app.from_address([127, 0, 1, last]);
        assert_eq!(guesser.login("ada@example.com", "a wild guess!").await.status(), 401);
    }

    let refused = app
        .from_address([127, 0, 1, 7])
        .login("ada@example.com", PASSWORD)
        .await;
    assert_eq!(refused.status(), 429, "the per-account ceiling holds across addresses");
    assert!(refused.headers().contains_key("retry-after"));
}

async fn registration_is_throttled_per_address(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.security.throttle.registrations_per_client = 3).await;
    for n in 0..3 {
        let email = format!("probe{n}@example.com");
        assert_eq!(app.register(&email, PASSWORD, "Probe").await.status(), 201);
    }

    let refused = app.register("probe3@example.com", PASSWORD, "Probe").await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["content-type"], "application/problem+json");
    let retry_after: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after >= 60, "registrations refill slowly: {retry_after} s");
    assert_eq!(
        app.register("probe0@example.com", PASSWORD, "Probe").await.status(),
        429,
        "a taken address is not revealed past the limit either"
    );
    let elsewhere = app.from_address([127, 0, 0, 9]);
    assert_eq!(
        elsewhere
            .register("probe3@example.com", PASSWORD, "Probe")
            .await
            .status(),
        201
    );
}

async fn one_client_cannot_spray_many_accounts(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.security.throttle.per_client = 3).await;

    for n in 0..3 {
        assert_eq!(
            app.login(&format!("victim{n}@example.com"), "guess number one")
                .await
                .status(),
            401
        );
    }

    assert_eq!(app.login("victim9@example.com", "guess number one").await.status(), 429);
}

async fn a_phone_ciphertext_copied_to_another_profile_reveals_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.reader("ada@example.com").await;
    let eve = app.reader("eve@example.com").await;
    app.patch_json("/me/profile", &ada.token, json!({"phone": "+442079460958"}))
        .await;
    let sealed = app.stored_profile(ada.id).await.phone;

    // An attacker with write access to the table moves Ada's ciphertext to Eve's row.
    let mut eve_profile = app.stored_profile(eve.id).await.into_active_model();
    eve_profile.phone = Set(sealed);
    eve_profile.update(&app.db).await.unwrap();

    let me: Value = app.get_as("/me", &eve.token).await.json().await.unwrap();
    assert_eq!(me["phone"], Value::Null, "the row id is bound into the ciphertext");
    let ada_me: Value = app.get_as("/me", &ada.token).await.json().await.unwrap();
    assert_eq!(ada_me["phone"], "+442079460958");
}

async fn rotated_keys_still_read_old_values_and_write_with_the_new_key(backend: Backend) {
    const OLD: &str = "old:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const NEW: &str = "new:HxwdHh8eHRwbGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQ=";
    let keys = |spec: &str| service::field_crypto::FieldCipher::from_config(spec).unwrap();
    let app = spawn_app_with(backend, |s| s.security.cipher = keys(OLD)).await;
    let ada = app.reader("ada@example.com").await;
    app.patch_json("/me/profile", &ada.token, json!({"phone": "+15551234567"}))
        .await;

    // A second server on the same database, configured with the new key first.
    let rotated = tests::spawn_app_on(&app.database, |s| s.security.cipher = keys(&format!("{NEW},{OLD}"))).await;
    let token = rotated.token_for("ada@example.com", PASSWORD).await;

    let me: Value = rotated.get_as("/me", &token).await.json().await.unwrap();
    assert_eq!(me["phone"], "+15551234567", "old values still decrypt");
    rotated
        .patch_json("/me/profile", &token, json!({"phone": "+15557654321"}))
        .await;
    let stored = app.stored_profile(ada.id).await.phone.unwrap();
    assert!(stored.starts_with("v1.new."), "{stored}");
}

backend_tests!(
    passwords_are_stored_as_argon2id_at_the_owasp_minimum,
    a_weaker_hash_is_upgraded_at_the_next_successful_login,
    only_a_sha256_of_each_256_bit_token_is_stored,
    unknown_email_and_wrong_password_look_the_same,
    an_unknown_email_still_costs_one_password_verification,
    no_more_password_hashes_run_at_once_than_the_budget_allows,
    a_login_that_cannot_get_a_hashing_slot_in_time_is_a_503_to_retry,
    equivalent_spellings_of_an_email_are_one_account,
    an_email_too_long_once_normalised_is_a_422,
    repeated_logins_to_one_account_are_throttled_without_affecting_others,
    respelling_an_email_does_not_reset_its_login_limit,
    guessing_from_one_address_does_not_lock_the_owner_out,
    guessing_spread_over_many_addresses_meets_the_account_ceiling,
    registration_is_throttled_per_address,
    one_client_cannot_spray_many_accounts,
    a_phone_ciphertext_copied_to_another_profile_reveals_nothing,
    rotated_keys_still_read_old_values_and_write_with_the_new_key,
);
