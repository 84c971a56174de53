//! The raw-driver side of P5: the same book rows written with `tokio-postgres`, as
//! multi-row INSERTs of the seed tool's chunk size and as a binary COPY, each in one
//! transaction like the seed.

use entity::book;
use futures_util::pin_mut;
use tokio_postgres::Client;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

const COLUMNS: &str = "id, author_id, title, description, isbn, published_year, created_at, updated_at, deleted_at";
const ROWS_PER_INSERT: usize = 2_000;

fn values(b: &book::Model) -> [&(dyn ToSql + Sync); 9] {
    [
        &b.id,
        &b.author_id,
        &b.title,
        &b.description,
        &b.isbn,
        &b.published_year,
        &b.created_at,
        &b.updated_at,
        &b.deleted_at,
    ]
}

pub async fn multi_row(client: &Client, rows: &[book::Model]) -> Result<(), String> {
    let err = |e: tokio_postgres::Error| e.to_string();
    client.batch_execute("BEGIN").await.map_err(err)?;
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let placeholders: Vec<String> = (0..chunk.len())
            .map(|r| {
                let cells: Vec<String> = (1..=9).map(|c| format!("${}", r * 9 + c)).collect();
                format!("({})", cells.join(", "))
            })
            .collect();
        let sql = format!("INSERT INTO books ({COLUMNS}) VALUES {}", placeholders.join(", "));
        let params: Vec<&(dyn ToSql + Sync)> = chunk.iter().flat_map(values).collect();
        client.execute(&sql, &params).await.map_err(err)?;
    }
    client.batch_execute("COMMIT").await.map_err(err)
}

pub async fn copy(client: &Client, rows: &[book::Model]) -> Result<(), String> {
    let err = |e: tokio_postgres::Error| e.to_string();
    client.batch_execute("BEGIN").await.map_err(err)?;
    let sink = client
        .copy_in(&format!("COPY books ({COLUMNS}) FROM STDIN (FORMAT binary)"))
        .await
        .map_err(err)?;
    let types = [
        Type::UUID,
        Type::UUID,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::INT4,
        Type::TIMESTAMPTZ,
        Type::TIMESTAMPTZ,
        Type::TIMESTAMPTZ,
    ];
    let writer = BinaryCopyInWriter::new(sink, &types);
    pin_mut!(writer);
    for b in rows {
        writer.as_mut().write(&values(b)).await.map_err(err)?;
    }
    writer.finish().await.map_err(err)?;
    client.batch_execute("COMMIT").await.map_err(err)
}
