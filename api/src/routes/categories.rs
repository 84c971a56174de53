//! `/categories`: roots, a node with children and breadcrumb, a nested subtree;
//! create, rename, move and delete (admin).

use actix_web::{HttpResponse, delete, get, patch, post, web};
use serde::{Deserialize, Serialize};
use service::cache::Key;
use service::categories::{self, CategoryName, TreeNode};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Admin;
use crate::cached_detail_route;
use crate::context::Ctx;
use crate::extract::{ConsistencyHeader, Json, Page, PageQuery, ReplicaRead};
use crate::problem::responses::{AdminOnly, BadQuery, BadToken, Invalid, JsonBody, NeedsToken, NotFound};
use crate::problem::{ApiError, Problem, Reply};
use crate::routes::{created, patch_field};
use crate::views::{CategoryPage, CategoryRef, CategoryView};

routes!(list_roots, create, get, update, delete, tree);

pub const LIST_STATEMENTS: u32 = 1;
/// The category, its children, its ancestors (one recursive CTE).
pub const GET_STATEMENTS: u32 = 3;
/// One recursive CTE, however deep the tree.
pub const TREE_STATEMENTS: u32 = 1;

/// List top-level categories
///
/// The categories that have no parent, by name, a page at a time.
#[utoipa::path(operation_id = "list_root_categories", tag = "categories", params(PageQuery, ConsistencyHeader),
    responses(
        (status = 200, body = CategoryPage, description = "Root categories by name",
            headers(("Cache-Control" = String, description = "`no-store`"))), BadQuery, BadToken))]
#[get("/categories")]
pub async fn list_roots(read: ReplicaRead, Page(page): Page) -> Reply {
    let roots = read.run(async |db| categories::list_roots(db, &page).await).await?;
    Ok(HttpResponse::Ok().json(CategoryPage::from(roots)))
}

#[derive(Serialize, ToSchema)]
pub struct CategoryDetailView {
    #[serde(flatten)]
    pub category: CategoryView,
    /// Direct children, by name.
    pub children: Vec<CategoryRef>,
    /// Breadcrumb from the root down to the parent.
    pub path: Vec<CategoryRef>,
}

cached_detail_route!(
    /// Get a category
    ///
    /// One category with its children and breadcrumb, cacheable: revalidate with If-None-Match.
    get,
    "get_category",
    "categories",
    "/categories/{id}",
    CategoryDetailView,
    "The category with its children and breadcrumb",
    Key::Category,
    |db, id| {
        let detail = categories::get(db, id).await?;
        Ok(CategoryDetailView {
            category: detail.category.into(),
            children: detail.children.iter().map(CategoryRef::from).collect(),
            path: detail.ancestors.iter().map(CategoryRef::from).collect(),
        })
    }
);

/// A category and everything below it.
#[derive(Serialize, ToSchema)]
pub struct CategoryTree {
    pub id: Uuid,
    pub name: String,
    #[schema(no_recursion)]
    pub children: Vec<CategoryTree>,
}

impl From<TreeNode> for CategoryTree {
    fn from(node: TreeNode) -> Self {
        CategoryTree {
            id: node.category.id,
            name: node.category.name,
            children: node.children.into_iter().map(Into::into).collect(),
        }
    }
}

cached_detail_route!(
    /// Get a category's subtree
    ///
    /// The category and all its descendants, nested, cacheable: revalidate with If-None-Match.
    tree,
    "get_category_tree",
    "categories",
    "/categories/{id}/tree",
    CategoryTree,
    "The whole subtree, nested",
    Key::CategoryTree,
    |db, id| categories::tree(db, id).await.map(CategoryTree::from)
);

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCategoryBody {
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// Omit (or null) for a root.
    pub parent_id: Option<Uuid>,
}

/// Add a category
///
/// Adds a category, at the top level or under a parent. Admins only.
#[utoipa::path(operation_id = "create_category", tag = "categories", request_body = NewCategoryBody, security(("bearer" = [])),
    responses(
        (status = 201, body = CategoryView, description = "Created"), AdminOnly,
        (status = 409, body = Problem, content_type = "application/problem+json", description = "Name taken among siblings"), JsonBody, NeedsToken, Invalid))]
#[post("/categories")]
pub async fn create(ctx: Ctx, Admin(admin): Admin, body: Json<NewCategoryBody>) -> Reply {
    let name = CategoryName::parse(&body.name).map_err(|e| ApiError::from(vec![e]))?;
    let category = ctx
        .publish(categories::create(ctx.primary_pool(), (&admin).into(), name, body.parent_id).await?)
        .await;
    created(format!("/categories/{}", category.id), CategoryView::from(category))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryPatch {
    /// A new name.
    #[schema(min_length = 1, max_length = 100)]
    pub name: Option<String>,
    /// Move under this category; `null` makes it a root.
    #[serde(default, deserialize_with = "patch_field")]
    #[schema(value_type = Option<Uuid>)]
    pub parent_id: Option<Option<Uuid>>,
}

/// Rename or move a category
///
/// Renames a category or moves it under another; a move under its own descendant is refused. Admins only.
#[utoipa::path(operation_id = "update_category", tag = "categories", params(("id" = Uuid, Path)),
    request_body = CategoryPatch, security(("bearer" = [])),
    responses(
        (status = 200, body = CategoryView, description = "Renamed and/or moved"), AdminOnly, NotFound,
        (status = 409, body = Problem, content_type = "application/problem+json",
            description = "Name taken among siblings, or a move under its own descendant"), JsonBody, NeedsToken, Invalid))]
#[patch("/categories/{id}")]
pub async fn update(ctx: Ctx, Admin(admin): Admin, id: web::Path<Uuid>, body: Json<CategoryPatch>) -> Reply {
    let body = body.into_inner();
    let name = body
        .name
        .as_deref()
        .map(CategoryName::parse)
        .transpose()
        .map_err(|e| ApiError::from(vec![e]))?;
    let category = ctx
        .publish(
            categories::update(
                ctx.primary_pool(),
                (&admin).into(),
                id.into_inner(),
                name,
                body.parent_id,
            )
            .await?,
        )
        .await;
    Ok(HttpResponse::Ok().json(CategoryView::from(category)))
}

/// Delete a category
///
/// Deletes a category; its children become top-level categories. Admins only.
#[utoipa::path(operation_id = "delete_category", tag = "categories", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted; its children became roots"), AdminOnly, NotFound,
        (status = 409, body = Problem, content_type = "application/problem+json",
            description = "A child would become a root with a name another root has"), NeedsToken))]
#[delete("/categories/{id}")]
pub async fn delete(ctx: Ctx, Admin(admin): Admin, id: web::Path<Uuid>) -> Reply {
    ctx.publish(categories::delete(ctx.primary_pool(), (&admin).into(), *id).await?)
        .await;
    Ok(HttpResponse::NoContent().finish())
}
