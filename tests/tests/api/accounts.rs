//! Registration, login, logout and the caller's own account, over HTTP.

use reqwest::Method;
use sea_orm::{ConnectionTrait, EntityTrait, PaginatorTrait};
use serde_json::{Value, json};
use tests::{Backend, PASSWORD, backend_tests, field_errors, spawn_app};

async fn registering_creates_the_user_and_profile_and_never_returns_the_hash(backend: Backend) {
    let app = spawn_app(backend).await;

    let response = app.register("  Ada@Example.com ", PASSWORD, "Ada Lovelace").await;

    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["location"], "/me");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["email"], "ada@example.com", "emails are normalised");
    assert_eq!(body["role"], "user");
    assert_eq!(body["display_name"], "Ada Lovelace");
    let text = body.to_string();
    assert!(!text.contains("password") && !text.contains("argon2"), "{text}");
    assert_eq!(entity::User::find().count(&app.db).await.unwrap(), 1);
    assert_eq!(entity::Profile::find().count(&app.db).await.unwrap(), 1);
}

async fn registration_is_all_or_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    // Make every profile insert fail, as a full disk or a bug would.
    let sabotage = match backend {
        Backend::Sqlite => vec![
            "CREATE TRIGGER sabotage BEFORE INSERT ON profiles BEGIN SELECT RAISE(ABORT, 'sabotaged'); END".to_owned(),
        ],
        Backend::Postgres => vec![
            "CREATE FUNCTION sabotage() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'sabotaged'; END $$"
                .to_owned(),
            "CREATE TRIGGER sabotage BEFORE INSERT ON profiles FOR EACH ROW EXECUTE FUNCTION sabotage()".to_owned(),
        ],
    };
    for sql in sabotage {
        app.db.execute_unprepared(&sql).await.unwrap();
    }

    let response = app.register("ada@example.com", PASSWORD, "Ada").await;

    assert_eq!(response.status(), 500);
    let body: Value = response.json().await.unwrap();
    assert!(
        !body.to_string().contains("sabotaged"),
        "internal errors stay internal: {body}"
    );
    assert_eq!(
        entity::User::find().count(&app.db).await.unwrap(),
        0,
        "the user insert was rolled back"
    );
}

async fn registering_a_taken_email_is_409_without_details(backend: Backend) {
    let app = spawn_app(backend).await;
    app.reader("ada@example.com").await;

    let response = app
        .register("ADA@example.com", "another long password", "Someone")
        .await;

    assert_eq!(response.status(), 409);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["detail"], "this email cannot be registered");
    assert!(!body.to_string().contains("ada@example.com"));
}

async fn invalid_registrations_list_every_bad_field(backend: Backend) {
    let app = spawn_app(backend).await;

    let response = app.register("not-an-email", "too short", "").await;

    assert_eq!(response.status(), 422);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "urn:bookworm:problem:validation");
    let mut fields: Vec<String> = field_errors(&body).into_iter().map(|(field, _)| field).collect();
    fields.sort();
    assert_eq!(fields, ["display_name", "email", "password"]);

    for (password, ok) in [
        ("x".repeat(11), false),
        ("x".repeat(12), true),
        ("x".repeat(128), true),
        ("x".repeat(129), false),
    ] {
        let email = format!("len{}@example.com", password.len());
        let status = app.register(&email, &password, "Len").await.status();
        assert_eq!(
            status.is_success(),
            ok,
            "a {}-character password gave {status}",
            password.len()
        );
    }
    assert_eq!(entity::User::find().count(&app.db).await.unwrap(), 2);
}

async fn malformed_bodies_are_refused_with_problems(backend: Backend) {
    let app = spawn_app(backend).await;

    let unknown_field = json!({"email": "a@example.com", "password": PASSWORD, "display_name": "A", "role": "admin"});
    let response = app
        .send(Method::POST, "/auth/register", None, Some(unknown_field))
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("unknown field `role`"),
        "{body}"
    );

    let not_json = app
        .request(Method::POST, "/auth/register", None)
        .body("email=a")
        .header("content-type", "text/plain");
    assert_eq!(not_json.send().await.unwrap().status(), 415);

    let broken = app
        .request(Method::POST, "/auth/register", None)
        .body("{\"email\":")
        .header("content-type", "application/json");
    assert_eq!(broken.send().await.unwrap().status(), 400);

    let huge = json!({"email": "a@example.com", "password": PASSWORD, "display_name": "x".repeat(70_000)});
    let response = app.send(Method::POST, "/auth/register", None, Some(huge)).await;
    assert_eq!(response.status(), 413);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    assert_eq!(entity::User::find().count(&app.db).await.unwrap(), 0);
}

async fn login_issues_a_new_bearer_token_each_time(backend: Backend) {
    let app = spawn_app(backend).await;
    app.reader("ada@example.com").await;

    let first: Value = app.login("ada@example.com", PASSWORD).await.json().await.unwrap();
    let second: Value = app.login("Ada@Example.com", PASSWORD).await.json().await.unwrap();

    assert_eq!(first["token_type"], "Bearer");
    assert_ne!(first["token"], second["token"]);
    let expires: chrono::DateTime<chrono::Utc> = first["expires_at"].as_str().unwrap().parse().unwrap();
    assert!(
        expires > chrono::Utc::now() + chrono::Duration::days(6),
        "default lifetime is 7 days"
    );
    for token in [&first["token"], &second["token"]] {
        let me = app.send(Method::GET, "/me", token.as_str(), None).await;
        assert_eq!(me.status(), 200);
        assert_eq!(me.json::<Value>().await.unwrap()["email"], "ada@example.com");
    }
}

async fn logout_revokes_only_the_token_used(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.reader("ada@example.com").await;
    let other_session = app.token_for("ada@example.com", PASSWORD).await;

    let response = app.post_as("/auth/logout", &ada.token).await;

    assert_eq!(response.status(), 204);
    let after = app.get_as("/me", &ada.token).await;
    assert_eq!(after.status(), 401);
    assert_eq!(
        after.headers()["www-authenticate"],
        r#"Bearer realm="bookworm", error="invalid_token""#
    );
    assert_eq!(app.get_as("/me", &other_session).await.status(), 200);
}

async fn missing_malformed_and_expired_tokens_are_401(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.reader("ada@example.com").await;

    let anonymous = app.get("/me").await;
    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.headers()["www-authenticate"], r#"Bearer realm="bookworm""#);

    for header in [
        "Basic YWRhOnB3",
        "Bearer",
        "Bearer not-a-token",
        "Bearer bw_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let response = app
            .request(Method::GET, "/me", None)
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{header}");
        assert!(
            response.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("invalid_token")
        );
    }

    entity::ApiToken::update_many()
        .col_expr(
            entity::api_token::Column::ExpiresAt,
            sea_orm::sea_query::Expr::value(chrono::Utc::now() - chrono::Duration::seconds(1)),
        )
        .exec(&app.db)
        .await
        .unwrap();
    assert_eq!(app.get_as("/me", &ada.token).await.status(), 401, "an expired token");
}

async fn owners_edit_their_profile_and_the_phone_is_stored_encrypted(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.reader("ada@example.com").await;

    let patch = json!({"display_name": "Countess", "bio": "Poetical science.", "phone": "+44 20 7946 0958"});
    let response = app.patch_json("/me/profile", &ada.token, patch).await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["display_name"], "Countess");
    assert_eq!(body["bio"], "Poetical science.");
    assert_eq!(body["phone"], "+442079460958");

    let stored = app.stored_profile(ada.id).await.phone.unwrap();
    assert!(stored.starts_with("v1.dev."), "{stored}");
    assert!(
        !stored.contains("2079460958") && !stored.contains("7946"),
        "plaintext reached the database: {stored}"
    );

    // Absent fields stay; null clears.
    let response = app.patch_json("/me/profile", &ada.token, json!({"phone": null})).await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["phone"], Value::Null);
    assert_eq!(body["bio"], "Poetical science.");
}

async fn profile_edits_are_validated_field_by_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.reader("ada@example.com").await;

    let patch = json!({"display_name": " ", "phone": "call me"});
    let response = app.patch_json("/me/profile", &ada.token, patch).await;

    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    let fields: Vec<String> = field_errors(&body).into_iter().map(|(field, _)| field).collect();
    assert_eq!(fields, ["display_name", "phone"]);
    assert_eq!(
        app.send(Method::PATCH, "/me/profile", None, Some(json!({"bio": "x"})))
            .await
            .status(),
        401
    );
}

async fn deleting_your_account_is_a_soft_delete_that_ends_every_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.reader("ada@example.com").await;
    let second_session = app.token_for("ada@example.com", PASSWORD).await;

    let response = app.delete_as("/me", &ada.token).await;

    assert_eq!(response.status(), 204);
    for token in [&ada.token, &second_session] {
        assert_eq!(app.get_as("/me", token).await.status(), 401);
    }
    let login = app.login("ada@example.com", PASSWORD).await;
    assert_eq!(login.status(), 401, "a deleted account cannot log in");
    let row = entity::User::find_by_id(ada.id)
        .one(&app.db)
        .await
        .unwrap()
        .expect("the row is kept");
    assert!(row.deleted_at.is_some());
}

backend_tests!(
    registering_creates_the_user_and_profile_and_never_returns_the_hash,
    registration_is_all_or_nothing,
    registering_a_taken_email_is_409_without_details,
    invalid_registrations_list_every_bad_field,
    malformed_bodies_are_refused_with_problems,
    login_issues_a_new_bearer_token_each_time,
    logout_revokes_only_the_token_used,
    missing_malformed_and_expired_tokens_are_401,
    owners_edit_their_profile_and_the_phone_is_stored_encrypted,
    profile_edits_are_validated_field_by_field,
    deleting_your_account_is_a_soft_delete_that_ends_every_session,
);
