//! The OpenAPI 3.1 document, generated from the handlers' annotations (utoipa) and
//! served at `GET /openapi.json`. CI runs schemathesis against it, so a handler that
//! answers something its annotation does not promise fails the build.

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "Bookworm", description = "The backend of a reading community: catalogue, reviews, shelves."),
    paths(
        routes::health::live,
        routes::health::ready,
        routes::auth::register,
        routes::auth::login,
        routes::auth::logout,
        routes::me::get,
        routes::me::update_profile,
        routes::me::delete,
        routes::shelf::list,
        routes::shelf::put,
        routes::shelf::delete,
        routes::admin_users::list,
        routes::admin_users::update,
        routes::admin_users::delete,
        routes::admin_users::restore,
        routes::admin_stats::refresh,
        routes::admin_audit::list,
        routes::users::get,
        routes::authors::list,
        routes::authors::get,
        routes::authors::create,
        routes::authors::update,
        routes::authors::delete,
        routes::books::list,
        routes::books::get,
        routes::books::create,
        routes::books::update,
        routes::books::delete,
        routes::books::set_categories,
        routes::reviews::list_for_book,
        routes::reviews::list_for_user,
        routes::reviews::get,
        routes::reviews::create,
        routes::reviews::update,
        routes::reviews::delete,
        routes::categories::list_roots,
        routes::categories::get,
        routes::categories::tree,
        routes::categories::create,
        routes::categories::update,
        routes::categories::delete,
        routes::search::books,
        routes::search::reviews,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "accounts", description = "Registration, sessions and your own account"),
        (name = "admin", description = "User management (admins only)"),
        (name = "authors"), (name = "books"), (name = "categories"), (name = "reviews"),
        (name = "shelf", description = "Your reading shelf"),
        (name = "search", description = "Full-text search"),
        (name = "health", description = "Probes for orchestrators"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A token from POST /auth/login"))
                    .build(),
            ),
        );
    }
}

pub async fn document() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
