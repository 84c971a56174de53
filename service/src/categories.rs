//! The category tree: roots, a node with its children and breadcrumb, a whole
//! subtree, and the admin's create / rename / move / delete.
//!
//! The tree is an adjacency list walked with recursive CTEs (`WITH RECURSIVE`,
//! standard SQL that PostgreSQL and SQLite both run), so a breadcrumb or subtree is
//! one statement whatever its depth. A nested-set or closure table would make reads
//! cheaper still but moves expensive and error-prone; catalogue trees are small and
//! moved rarely, and this keeps the schema the obvious one.

use std::collections::HashMap;

use entity::{book_category, category};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, IntoActiveModel, Order,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use crate::ServiceError;
use crate::database::raw_statement;
use crate::database::{Actor, WriteTxn, begin_write_as};
use crate::error::UniqueKey;
use crate::input::{FieldError, text_value};
use crate::pagination::{self, Cursor, CursorKey, KeyKind, Ordering, Page, PageRequest};
use crate::written::{Tag, Written};

/// Deeper than any real catalogue; stops a walk if a cycle was ever written by hand.
const MAX_DEPTH: u32 = 64;

text_value!(
    /// A category's name: 1 to 100 characters, one line; unique among its siblings.
    CategoryName, field: "name", chars: 1..=100, multiline: false
);

/// A node with everything below it.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeNode {
    pub category: category::Model,
    pub children: Vec<TreeNode>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CategoryDetail {
    pub category: category::Model,
    pub children: Vec<category::Model>,
    /// From the root down to the parent (excluding the category itself).
    pub ancestors: Vec<category::Model>,
}

fn by_name() -> Ordering {
    Ordering::new(
        category::Column::Name.into_expr(),
        KeyKind::Text,
        category::Column::Id,
        Order::Asc,
    )
}

/// The category and all its descendants (one recursive statement).
async fn subtree<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<Vec<category::Model>, ServiceError> {
    let backend = db.get_database_backend();
    let sql = format!(
        "WITH RECURSIVE subtree (id, depth) AS (
             SELECT id, 0 FROM categories WHERE id = $1
             UNION
             SELECT c.id, s.depth + 1 FROM categories c JOIN subtree s ON c.parent_id = s.id WHERE s.depth < {MAX_DEPTH}
         )
         SELECT categories.* FROM categories WHERE id IN (SELECT id FROM subtree)",
    );
    let rows = category::Entity::find()
        .from_raw_sql(raw_statement(backend, &sql, [id.into()]))
        .all(db)
        .await?;
    Ok(rows)
}

/// Ids of the category and its descendants: what "books in this category" covers.
pub async fn subtree_ids<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<Vec<Uuid>, ServiceError> {
    Ok(subtree(db, id).await?.into_iter().map(|c| c.id).collect())
}

/// The chain of ancestors from the root down to the parent (one recursive statement).
async fn ancestors<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<Vec<category::Model>, ServiceError> {
    let backend = db.get_database_backend();
    let sql = format!(
        "WITH RECURSIVE ancestors (id, parent_id, depth) AS (
             SELECT id, parent_id, 0 FROM categories WHERE id = $1
             UNION
             SELECT c.id, c.parent_id, a.depth + 1 FROM categories c JOIN ancestors a ON c.id = a.parent_id
             WHERE a.depth < {MAX_DEPTH}
         )
         SELECT categories.* FROM categories JOIN ancestors ON ancestors.id = categories.id
         WHERE ancestors.depth > 0 ORDER BY ancestors.depth DESC",
    );
    Ok(category::Entity::find()
        .from_raw_sql(raw_statement(backend, &sql, [id.into()]))
        .all(db)
        .await?)
}

pub async fn list_roots(db: &impl ConnectionTrait, page: &PageRequest) -> Result<Page<category::Model>, ServiceError> {
    let query = category::Entity::find().filter(category::Column::ParentId.is_null());
    let rows = by_name().apply(query, page)?.all(db).await?;
    Ok(pagination::finish(rows, page, |c| Cursor {
        key: CursorKey::Text(c.name.clone()),
        id: c.id,
    }))
}

async fn find(db: &impl ConnectionTrait, id: Uuid) -> Result<category::Model, ServiceError> {
    category::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(ServiceError::NotFound("category"))
}

/// A category, its children and its breadcrumb. Three statements.
pub async fn get(db: &impl ConnectionTrait, id: Uuid) -> Result<CategoryDetail, ServiceError> {
    let category = find(db, id).await?;
    let children = category::Entity::find()
        .filter(category::Column::ParentId.eq(id))
        .order_by_asc(category::Column::Name)
        .all(db)
        .await?;
    let ancestors = ancestors(db, id).await?;
    Ok(CategoryDetail {
        category,
        children,
        ancestors,
    })
}

/// The whole subtree under `id` as nested nodes, children by name. One statement.
pub async fn tree(db: &impl ConnectionTrait, id: Uuid) -> Result<TreeNode, ServiceError> {
    let mut nodes = subtree(db, id).await?;
    nodes.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    let root = nodes
        .iter()
        .find(|c| c.id == id)
        .cloned()
        .ok_or(ServiceError::NotFound("category"))?;
    let mut children_of: HashMap<Uuid, Vec<category::Model>> = HashMap::new();
    for node in nodes.into_iter().filter(|c| c.id != id) {
        if let Some(parent) = node.parent_id {
            children_of.entry(parent).or_default().push(node);
        }
    }
    fn build(category: category::Model, children_of: &mut HashMap<Uuid, Vec<category::Model>>) -> TreeNode {
        let children = children_of.remove(&category.id).unwrap_or_default();
        TreeNode {
            children: children.into_iter().map(|c| build(c, children_of)).collect(),
            category,
        }
    }
    Ok(build(root, &mut children_of))
}

/// Names are unique among siblings: two partial indexes, one for roots.
const SIBLING_NAMES: &[UniqueKey] = &[
    UniqueKey::new(
        "uq_categories_sibling_name",
        "categories.parent_id, categories.name",
        "a category with this name already exists at this level",
    ),
    UniqueKey::new(
        "uq_categories_root_name",
        "categories.name",
        "a category with this name already exists at this level",
    ),
];

/// Deleting a category lifts its children to the root, where a name may be taken.
const LIFTED_CHILD_NAMES: &[UniqueKey] = &[UniqueKey::new(
    "uq_categories_root_name",
    "categories.name",
    "a child of this category has the same name as a root category; rename or move it first",
)];

fn sibling_conflict(err: sea_orm::DbErr) -> ServiceError {
    ServiceError::conflict_on(SIBLING_NAMES)(err)
}

/// What a change to a category shows in: the tree, and the books filed under it.
async fn category_changed(txn: &mut WriteTxn, id: Uuid) -> Result<(), ServiceError> {
    let books: Vec<Uuid> = book_category::Entity::find()
        .select_only()
        .column(book_category::Column::BookId)
        .filter(book_category::Column::CategoryId.eq(id))
        .into_tuple()
        .all(&*txn)
        .await?;
    txn.changed(Tag::and_books(Tag::Categories, books));
    Ok(())
}

/// Creates a category. The parent's check and the insert are one transaction; the
/// parent row is locked so that it cannot be deleted in between.
pub async fn create(
    db: &DatabaseConnection,
    actor: Actor,
    name: CategoryName,
    parent_id: Option<Uuid>,
) -> Result<Written<category::Model>, ServiceError> {
    let mut txn = begin_write_as(db, Some(actor)).await?;
    if let Some(parent) = parent_id
        && category::Entity::find_by_id(parent)
            .lock_shared()
            .one(&txn)
            .await?
            .is_none()
    {
        return Err(ServiceError::InvalidFields(vec![FieldError::new(
            "parent_id",
            "no such category",
        )]));
    }
    let model = category::ActiveModel {
        name: Set(name.into_string()),
        parent_id: Set(parent_id),
        ..Default::default()
    }
    .insert(&txn)
    .await
    .map_err(sibling_conflict)?;
    txn.changed([Tag::Categories]);
    Ok(txn.commit(model).await?)
}

/// Renames and/or moves a category. `parent_id: Some(None)` makes it a root. Moving
/// a category under itself or one of its descendants would cut the subtree off the
/// tree into a cycle, and is refused with a conflict. The checks and the write are
/// one transaction, and a move locks the whole table against other moves first (on
/// PostgreSQL; SQLite's writer lock does it there): two moves checked side by side
/// could each pass and together close a cycle.
pub async fn update(
    db: &DatabaseConnection,
    actor: Actor,
    id: Uuid,
    name: Option<CategoryName>,
    parent_id: Option<Option<Uuid>>,
) -> Result<Written<category::Model>, ServiceError> {
    let mut txn = begin_write_as(db, Some(actor)).await?;
    if parent_id.is_some() && txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_unprepared("LOCK TABLE categories IN SHARE ROW EXCLUSIVE MODE")
            .await?;
    }
    let existing = find(&txn, id).await?;
    let mut active = existing.clone().into_active_model();
    if let Some(name) = name {
        active.name = Set(name.into_string());
    }
    if let Some(new_parent) = parent_id {
        if let Some(parent) = new_parent {
            if category::Entity::find_by_id(parent).one(&txn).await?.is_none() {
                return Err(ServiceError::InvalidFields(vec![FieldError::new(
                    "parent_id",
                    "no such category",
                )]));
            }
            if subtree_ids(&txn, id).await?.contains(&parent) {
                return Err(ServiceError::Conflict(
                    "a category cannot move under itself or its descendants".into(),
                ));
            }
        }
        active.parent_id = Set(new_parent);
    }
    if !active.is_changed() {
        return Ok(txn.commit(existing).await?);
    }
    let updated = active.update(&txn).await.map_err(sibling_conflict)?;
    category_changed(&mut txn, id).await?;
    Ok(txn.commit(updated).await?)
}

/// Deletes a category; its children become roots (ON DELETE SET NULL) and its book
/// links go (ON DELETE CASCADE). Categories have no soft delete: nothing refers to
/// a category but links that mean nothing without it. If a child would become a
/// root with the same name as an existing root, the unique index refuses the
/// cascade and the delete is a conflict: rename or move that child first.
pub async fn delete(db: &DatabaseConnection, actor: Actor, id: Uuid) -> Result<Written<()>, ServiceError> {
    let mut txn = begin_write_as(db, Some(actor)).await?;
    // The links go with the category: what they filed is read first.
    category_changed(&mut txn, id).await?;
    let result = category::Entity::delete_by_id(id)
        .exec(&txn)
        .await
        .map_err(ServiceError::conflict_on(LIFTED_CHILD_NAMES))?;
    if result.rows_affected == 0 {
        return Err(ServiceError::NotFound("category"));
    }
    Ok(txn.commit(()).await?)
}
