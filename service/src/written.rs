//! What a write changed, carried out of its transaction together with its result.
//!
//! Every write commits through [`WriteTxn::commit`](crate::database::WriteTxn::commit),
//! which returns a [`Written`]: the write's result and the cache tags it touched,
//! recorded inside the transaction ([`WriteTxn::changed`](crate::database::WriteTxn::changed))
//! by the code that made the change, from ids it already holds. A `Written` must be
//! used, and its result can only be taken out by
//! [`Cache::publish`](crate::cache::Cache::publish), which invalidates the tags first:
//! a handler cannot reach what a write returned without the cache learning what it
//! changed.
//!
//! Rejected: handlers naming what they wrote after the commit (`ctx.written(Change::…)`),
//! which a new endpoint could forget, and which made the cache ask the primary again,
//! after the commit, for ids the write had in hand.

use uuid::Uuid;

/// A group of cached reads a write can change. A cached entry is stamped with the tags
/// of what it shows; a write replaces the versions of the tags it touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tag {
    /// A book's detail (with its author's name, its categories and its rating).
    Book(Uuid),
    /// An author's detail (with their list of books).
    Author(Uuid),
    /// A reader's public profile.
    User(Uuid),
    /// The whole category tree: categories change rarely and a move reshapes it.
    Categories,
    /// The reader statistics, recomputed all at once.
    Stats,
}

impl Tag {
    /// `first`, and the detail of each of `books`, which shows it.
    pub(crate) fn and_books(first: Tag, books: Vec<Uuid>) -> impl Iterator<Item = Tag> {
        std::iter::once(first).chain(books.into_iter().map(Tag::Book))
    }

    pub(crate) fn name(&self) -> String {
        match self {
            Tag::Book(id) => format!("book:{id}"),
            Tag::Author(id) => format!("author:{id}"),
            Tag::User(id) => format!("user:{id}"),
            Tag::Categories => "categories".to_owned(),
            Tag::Stats => "stats".to_owned(),
        }
    }
}

/// A committed write's result and the tags it touched.
#[must_use = "pass it to Cache::publish: until then, cached reads go on showing what this write changed"]
#[derive(Debug)]
pub struct Written<T> {
    value: T,
    tags: Vec<Tag>,
}

impl<T> Written<T> {
    pub(crate) fn new(value: T, mut tags: Vec<Tag>) -> Self {
        tags.sort();
        tags.dedup();
        Self { value, tags }
    }

    /// The tags the write touched, each once.
    pub fn tags(&self) -> &[Tag] {
        &self.tags
    }

    /// The result, for the cache, once it has invalidated the tags.
    pub(crate) fn into_parts(self) -> (T, Vec<Tag>) {
        (self.value, self.tags)
    }

    /// The result, without telling any cache what changed: for tools that cannot
    /// reach the API's cache (the CLI), where cached reads catch up within the cache's
    /// TTL. A handler must use `AppContext::publish`; clippy refuses this call
    /// (`clippy.toml`) outside an explicit `#[allow]`.
    pub fn unpublished(self) -> T {
        self.value
    }

    /// For writes that change nothing any cached read shows (a bootstrap from the
    /// CLI), inside this crate only; a tag recorded anyway is a bug the tests catch.
    pub(crate) fn nothing_cached(self) -> T {
        debug_assert!(
            self.tags.is_empty(),
            "a write with tags {:?} was not published",
            self.tags
        );
        self.value
    }
}
