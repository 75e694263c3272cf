//! The COPY wire: `COPY ... FROM STDIN` fed in chunks (and aborted when the feeder stops),
//! `COPY ... TO STDOUT` read as text one row at a time, and raw binary values.

use anyhow::{Context, Result, bail};
use tokio_postgres::Client;

use super::error;

/// A value as the server sent it in binary, whatever its type: what binary COPY takes.
#[derive(Debug, Clone, PartialEq)]
pub struct RawValue(pub Vec<u8>);

impl<'a> tokio_postgres::types::FromSql<'a> for RawValue {
    fn from_sql(
        _: &tokio_postgres::types::Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(RawValue(raw.to_vec()))
    }

    fn accepts(_: &tokio_postgres::types::Type) -> bool {
        true
    }
}

/// What a COPY's feeder sends: data (with the file bytes it stands for, for progress),
/// then `End` once everything was sent. A feeder that stops without `End` (an error on
/// its side) makes `copy_in` abort the COPY.
pub enum Chunk {
    Data(bytes::Bytes, u64),
    End,
}

/// The feeder stopped before `End`; the caller knows why.
#[derive(Debug)]
pub struct FeedStopped;

impl std::fmt::Display for FeedStopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the COPY input stopped early")
    }
}

impl std::error::Error for FeedStopped {}

/// The session settings under which verify reads a target's values as text (those of
/// a PostgreSQL source's readers).
pub async fn verify_session(client: &Client, table: &str) -> Result<()> {
    client
        .batch_execute(&format!(
            "{}; SET TimeZone = 'UTC'",
            crate::db::sql::pg::set_all(&crate::db::sql::pg::VALUE_FORMS, false)
        ))
        .await
        .map_err(error)
        .with_context(|| format!("reading `{table}` from the target for verify"))
}

/// Stream a SELECT (`verify::deep::target_select`) out of the target with `COPY ... TO STDOUT`
/// (text format, in the session's ISO/UTC/hex settings), one row of fields at a time.
pub async fn copy_out_rows(
    client: &Client,
    table: &str,
    select: &str,
    on_row: impl FnMut(&[Option<&[u8]>]) -> Result<()>,
) -> Result<()> {
    let context = || format!("reading `{table}` from the target for verify");
    verify_session(client, table).await?;
    copy_text_rows(
        client,
        &format!("COPY ({select}) TO STDOUT"),
        &context,
        on_row,
    )
    .await
}

/// Run a `COPY ... TO STDOUT` (text format) and give each row's fields to `on_row`
/// (None for NULL), one row at a time. `context` names the read in the server's and
/// the reader's errors; `on_row`'s own errors pass as they are.
pub async fn copy_text_rows(
    client: &Client,
    sql: &str,
    context: &(dyn Fn() -> String + Sync),
    mut on_row: impl FnMut(&[Option<&[u8]>]) -> Result<()>,
) -> Result<()> {
    use futures_util::StreamExt;
    let stream = client
        .copy_out(sql)
        .await
        .map_err(error)
        .with_context(context)?;
    futures_util::pin_mut!(stream);
    let mut reader = crate::codec::pgtext::Reader::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(error).with_context(context)?;
        reader.feed(&chunk, &mut on_row)?;
    }
    reader.finish().with_context(context)
}

/// Run `COPY ... FROM STDIN` with the data `chunks` deliver and return the row count the
/// server reports. Unless the feeder says `End`, the sink is dropped unfinished, which
/// sends CopyFail: nothing of that COPY remains (error [`FeedStopped`] in the chain).
pub async fn copy_in(
    tx: &tokio_postgres::Transaction<'_>,
    copy_sql: &str,
    mut chunks: tokio::sync::mpsc::Receiver<Chunk>,
    mut on_bytes: impl FnMut(u64),
) -> Result<u64> {
    use futures_util::SinkExt;
    let sink = tx
        .copy_in::<_, bytes::Bytes>(copy_sql)
        .await
        .map_err(error)?;
    futures_util::pin_mut!(sink);
    loop {
        match chunks.recv().await {
            Some(Chunk::Data(data, consumed)) => {
                sink.feed(data).await.map_err(error)?;
                on_bytes(consumed);
            }
            Some(Chunk::End) => break,
            None => bail!(FeedStopped),
        }
    }
    let rows = sink.as_mut().finish().await.map_err(error)?;
    Ok(rows)
}
