//! Admin management of users: list, change role, soft-delete, restore.

use actix_web::{HttpResponse, web};
use entity::user::Role;
use serde::{Deserialize, Serialize};
use service::accounts::{self, UserFilter};
use service::pagination::PageRequest;
use uuid::Uuid;

use crate::auth::Admin;
use crate::context::AppContext;
use crate::problem::ApiError;
use crate::routes::me::AccountView;

#[derive(Deserialize)]
pub struct ListQuery {
    pub limit: Option<u64>,
    pub cursor: Option<String>,
    pub role: Option<Role>,
    #[serde(default)]
    pub include_deleted: bool,
}

#[derive(Serialize)]
pub struct UserPage {
    pub items: Vec<AccountView>,
    pub next_cursor: Option<String>,
}

pub async fn list(
    ctx: web::Data<AppContext>,
    _admin: Admin,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let filter = UserFilter {
        role: query.role,
        include_deleted: query.include_deleted,
    };
    let users = accounts::list_users(&ctx.db, &ctx.cipher, filter, &page).await?;
    Ok(HttpResponse::Ok().json(UserPage {
        items: users.items.into_iter().map(AccountView::from).collect(),
        next_cursor: users.next_cursor,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    pub role: Role,
}

pub async fn update(
    ctx: web::Data<AppContext>,
    Admin(admin): Admin,
    id: web::Path<Uuid>,
    body: web::Json<UserPatch>,
) -> Result<HttpResponse, ApiError> {
    let account = accounts::set_role(&ctx.db, &ctx.cipher, &admin, id.into_inner(), body.role).await?;
    Ok(HttpResponse::Ok().json(AccountView::from(account)))
}

pub async fn delete(
    ctx: web::Data<AppContext>,
    Admin(admin): Admin,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    accounts::admin_delete_user(&ctx.db, &admin, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn restore(ctx: web::Data<AppContext>, _admin: Admin, id: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let account = accounts::restore_user(&ctx.db, &ctx.cipher, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(AccountView::from(account)))
}
