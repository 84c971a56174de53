//! Admin management of users, and who may do it.

use std::collections::HashSet;

use reqwest::Method;
use serde_json::{Value, json};
use tests::{Backend, PASSWORD, backend_tests, spawn_app};

async fn only_admins_manage_users(backend: Backend) {
    let app = spawn_app(backend).await;
    let reader = app.reader("reader@example.com").await;
    let target = format!("/admin/users/{}", reader.id);

    let calls = [
        (Method::GET, "/admin/users".to_owned(), None),
        (Method::PATCH, target.clone(), Some(json!({"role": "admin"}))),
        (Method::DELETE, target.clone(), None),
        (Method::POST, format!("{target}/restore"), None),
    ];
    for (method, path, body) in calls {
        let anonymous = app.send(method.clone(), &path, None, body.clone()).await;
        assert_eq!(anonymous.status(), 401, "anonymous {method} {path}");
        let as_reader = app.send(method.clone(), &path, Some(&reader.token), body).await;
        assert_eq!(as_reader.status(), 403, "reader {method} {path}");
        assert_eq!(as_reader.headers()["content-type"], "application/problem+json");
    }
    let me: Value = app.get_as("/me", &reader.token).await.json().await.unwrap();
    assert_eq!(me["role"], "user", "nothing changed");
}

async fn admins_page_through_users_with_filters(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin().await;
    for n in 0..7 {
        app.reader(&format!("reader{n}@example.com")).await;
    }

    let seen: Vec<String> = app
        .walk_pages("/admin/users?limit=3", Some(&admin.token))
        .await
        .iter()
        .map(|u| u["email"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(seen.len(), 8, "{seen:?}");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 8, "no duplicates");
    assert_eq!(seen.last().unwrap(), "admin@example.com", "newest first");

    let admins: Value = app
        .get_as("/admin/users?role=admin", &admin.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(admins["items"].as_array().unwrap().len(), 1);

    let bad_cursor = app.get_as("/admin/users?cursor=garbage", &admin.token).await;
    assert_eq!(bad_cursor.status(), 400);
    let bad_role = app.get_as("/admin/users?role=emperor", &admin.token).await;
    assert_eq!(bad_role.status(), 400);
    let zero = app.get_as("/admin/users?limit=0", &admin.token).await;
    assert_eq!(zero.status(), 400);
}

async fn a_role_change_applies_at_once_and_ends_the_users_sessions(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin().await;
    let reader = app.reader("reader@example.com").await;

    let response = app
        .patch_json(
            &format!("/admin/users/{}", reader.id),
            &admin.token,
            json!({"role": "guest"}),
        )
        .await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["role"], "guest");
    assert_eq!(
        app.get_as("/me", &reader.token).await.status(),
        401,
        "old token revoked"
    );
    let token = app.token_for("reader@example.com", PASSWORD).await;
    let me: Value = app.get_as("/me", &token).await.json().await.unwrap();
    assert_eq!(me["role"], "guest");
    let edit = app.patch_json("/me/profile", &token, json!({"bio": "hi"})).await;
    assert_eq!(edit.status(), 403, "guest accounts are read-only");

    let own = app
        .patch_json(
            &format!("/admin/users/{}", admin.id),
            &admin.token,
            json!({"role": "user"}),
        )
        .await;
    assert_eq!(own.status(), 409, "an admin cannot demote themselves");
    let bad = app
        .patch_json(
            &format!("/admin/users/{}", reader.id),
            &admin.token,
            json!({"role": "root"}),
        )
        .await;
    assert_eq!(bad.status(), 400);
}

async fn admins_soft_delete_and_restore_users(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin().await;
    let reader = app.reader("reader@example.com").await;
    let path = format!("/admin/users/{}", reader.id);

    assert_eq!(app.delete_as(&path, &admin.token).await.status(), 204);

    assert_eq!(app.get_as("/me", &reader.token).await.status(), 401);
    assert_eq!(app.login("reader@example.com", PASSWORD).await.status(), 401);
    let live: Value = app.get_as("/admin/users", &admin.token).await.json().await.unwrap();
    assert_eq!(live["items"].as_array().unwrap().len(), 1, "only the admin is live");
    let all: Value = app
        .get_as("/admin/users?include_deleted=true", &admin.token)
        .await
        .json()
        .await
        .unwrap();
    let deleted = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "reader@example.com")
        .unwrap();
    assert!(deleted["deleted_at"].is_string());
    assert_eq!(
        app.delete_as(&path, &admin.token).await.status(),
        404,
        "already deleted"
    );

    let restored = app.post_as(&format!("{path}/restore"), &admin.token).await;
    assert_eq!(restored.status(), 200);
    assert_eq!(app.login("reader@example.com", PASSWORD).await.status(), 200);
    assert_eq!(
        app.delete_as(&format!("/admin/users/{}", admin.id), &admin.token)
            .await
            .status(),
        409
    );
}

async fn unknown_and_malformed_ids_are_404(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin().await;

    for path in [
        format!("/admin/users/{}", uuid::Uuid::now_v7()),
        "/admin/users/not-a-uuid".to_owned(),
    ] {
        let response = app.patch_json(&path, &admin.token, json!({"role": "user"})).await;
        assert_eq!(response.status(), 404, "{path}");
        let restore = app.post_as(&format!("{path}/restore"), &admin.token).await;
        assert_eq!(restore.status(), 404, "{path}/restore");
    }
}

async fn admins_see_phone_numbers_in_the_user_list(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin().await;
    let reader = app.reader("reader@example.com").await;
    app.patch_json("/me/profile", &reader.token, json!({"phone": "+15551234567"}))
        .await;

    let list: Value = app.get_as("/admin/users", &admin.token).await.json().await.unwrap();

    let listed = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "reader@example.com")
        .unwrap();
    assert_eq!(listed["phone"], "+15551234567");
}

backend_tests!(
    only_admins_manage_users,
    admins_page_through_users_with_filters,
    a_role_change_applies_at_once_and_ends_the_users_sessions,
    admins_soft_delete_and_restore_users,
    unknown_and_malformed_ids_are_404,
    admins_see_phone_numbers_in_the_user_list,
);
