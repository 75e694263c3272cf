//! The binary-log client: a replication connection (COM_REGISTER_SLAVE and
//! COM_BINLOG_DUMP through mysql_async's `binlog` feature) that reads a source's log from
//! one position up to another, and no further. It hands on the rows events of one
//! database's tables (their table maps as type bytes and metadata, the images' raw bytes)
//! and the statements logged as text (DDL), and never decodes a row itself: that is
//! `codec::binlog_row`'s, for the key columns only. An event it does not know, a
//! compressed event or a log that ends early is an error, never skipped.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use futures_util::StreamExt;
use mysql_async::binlog::events::{EventData, RowsEventData};

use crate::codec::binlog_row::{MapColumn, RowsKind};
use crate::config::ServerConfig;
use crate::db::mysql::{connect, error};
use crate::hint::with_hint;

/// One event a reader of the log is given.
pub enum Seen<'a> {
    /// A rows event of a table of the database read.
    Rows {
        table: &'a str,
        kind: RowsKind,
        columns: &'a [MapColumn],
        before: Vec<bool>,
        after: Vec<bool>,
        data: &'a [u8],
        /// Where the event ends, for messages.
        at: String,
    },
    /// A statement logged as text (DDL, TRUNCATE), with its default database.
    Query {
        default_db: &'a str,
        sql: &'a str,
        at: String,
    },
}

/// What reading the log found besides its events.
#[derive(Debug, Clone, Default)]
pub struct Read {
    /// The time stamp of the first file's Format_description event: when that file was
    /// created (the log's identity, with the server's).
    pub file_created: u32,
    /// The same for every file read, in order.
    pub files_created: Vec<(String, u32)>,
    pub events: u64,
}

/// A table map of a table of the database read.
struct TableMap {
    table: String,
    columns: Vec<MapColumn>,
}

/// MariaDB's event types that a replica without its capabilities is sent as they are
/// and that carry nothing for a delta (annotate rows, binlog checkpoint, GTID, GTID list,
/// start encryption).
const MARIADB_IGNORED: [u8; 5] = [160, 161, 162, 163, 164];
/// MariaDB's compressed query and rows events (`log_bin_compress=ON`).
const MARIADB_COMPRESSED: std::ops::RangeInclusive<u8> = 165..=171;

/// A replica's `server_id` of our own: from 2^30 up, varied per process and call, so
/// that two readers (or a reader and a real replica) never evict each other.
fn reader_server_id() -> u32 {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
        .unwrap_or(0);
    let mixed = nanos
        .wrapping_mul(2_654_435_761)
        .wrapping_add(std::process::id().wrapping_mul(40_503));
    (1 << 30) + (mixed % ((1 << 30) - 1))
}

/// The file a Rotate event names: the longest of the server's file names it starts with
/// (a Rotate sent before the format is known carries its checksum after the name).
fn rotated_to(name: &[u8], files: &[String]) -> Option<String> {
    files
        .iter()
        .filter(|f| name.starts_with(f.as_bytes()))
        .max_by_key(|f| f.len())
        .cloned()
}

/// Read `db`'s events from `from` (file, position) up to exactly `to`, handing each on.
/// `files`: the server's log files (SHOW BINARY LOGS), to follow rotations by name.
pub async fn read(
    cfg: &ServerConfig,
    db: &str,
    from: (&str, u64),
    to: (&str, u64),
    files: &[String],
    mut on: impl FnMut(Seen<'_>) -> Result<()>,
) -> Result<Read> {
    let conn = connect(cfg, None).await?;
    let server_id = reader_server_id();
    let request = mysql_async::BinlogStreamRequest::new(server_id)
        .with_filename(from.0.as_bytes())
        .with_pos(from.1)
        .with_non_blocking();
    let mut stream = conn.get_binlog_stream(request).await.map_err(|e| {
        with_hint(
            error(e).context(format!(
                "opening a replication stream at {}:{} (replica server_id {server_id})",
                from.0, from.1
            )),
            "the user needs REPLICATION SLAVE; `pgconverge check` lists what is missing",
        )
    })?;
    let mut maps: HashMap<u64, Option<Arc<TableMap>>> = HashMap::new();
    let mut file = from.0.to_string();
    let mut out = Read::default();
    let mut done = from == to;
    // The events a compressed transaction (MySQL 8's binlog_transaction_compression) still
    // holds: mysql_async hands them on right after its payload event, which carries the
    // transaction's end position. They are read before stopping at that position.
    let mut inner_left: u64 = 0;
    while let Some(event) = stream.next().await {
        let event = event.map_err(error).with_context(|| {
            format!(
                "reading the binary log (at {file}, from {}:{})",
                from.0, from.1
            )
        })?;
        out.events += 1;
        let inner = inner_left > 0;
        inner_left = inner_left.saturating_sub(1);
        let header = event.header();
        let end = u64::from(header.log_pos());
        let at = format!("{file}:{end}");
        let ty = header.event_type_raw();
        // Each file starts with its Format_description event (sent after the Rotate that
        // named the file): its time stamp is when that file was created.
        if ty == mysql_async::binlog::EventType::FORMAT_DESCRIPTION_EVENT as u8 {
            if out.file_created == 0 {
                out.file_created = header.timestamp();
            }
            if out.files_created.last().is_none_or(|(f, _)| *f != file) {
                out.files_created.push((file.clone(), header.timestamp()));
            }
        }
        if done && out.file_created != 0 && !inner {
            break;
        }
        let data = match event.read_data() {
            Ok(Some(d)) => d,
            Ok(None) if MARIADB_IGNORED.contains(&ty) => continue,
            Ok(None) if MARIADB_COMPRESSED.contains(&ty) => {
                return Err(with_hint(
                    anyhow!(
                        "the binary log holds compressed events (type {ty}, at {at}): log_bin_compress is or was ON"
                    ),
                    "set log_bin_compress=OFF and start a new chain (export --delta-base)",
                ));
            }
            Ok(None) if header.flags_raw() & 0x80 != 0 => continue,
            Ok(None) => bail!("an event of type {ty} at {at}, which pgconverge does not read"),
            Err(e) => return Err(anyhow!("reading an event of type {ty} at {at}: {e}")),
        };
        match data {
            EventData::RotateEvent(r) => {
                file = rotated_to(r.name_raw(), files).ok_or_else(|| {
                    anyhow!(
                        "the log rotated to `{}`, which SHOW BINARY LOGS did not list",
                        String::from_utf8_lossy(r.name_raw())
                    )
                })?;
                continue;
            }
            EventData::TableMapEvent(t) => {
                let wanted = t.database_name_raw() == db.as_bytes();
                let map = if wanted {
                    let mut columns = Vec::new();
                    for i in 0..t.columns_count() as usize {
                        let ty = t
                            .get_raw_column_type(i)
                            .map_err(|e| anyhow!("table map at {at}: {e:?}"))?
                            .ok_or_else(|| anyhow!("table map at {at}: column #{i} missing"))?;
                        let meta = t.get_column_metadata(i).ok_or_else(|| {
                            anyhow!("table map at {at}: no metadata for column #{}", i + 1)
                        })?;
                        columns.push(MapColumn {
                            ty: ty as u8,
                            meta: meta.to_vec(),
                        });
                    }
                    Some(Arc::new(TableMap {
                        table: t.table_name().into_owned(),
                        columns,
                    }))
                } else {
                    None
                };
                maps.insert(t.table_id(), map);
            }
            EventData::RowsEvent(r) => {
                let map = maps
                    .get(&r.table_id())
                    .cloned()
                    .ok_or_else(|| anyhow!("a rows event at {at} without its table map"))?;
                if let Some(map) = map {
                    let kind = match &r {
                        RowsEventData::WriteRowsEventV1(_) | RowsEventData::WriteRowsEvent(_) => {
                            RowsKind::Write
                        }
                        RowsEventData::UpdateRowsEventV1(_) | RowsEventData::UpdateRowsEvent(_) => {
                            RowsKind::Update
                        }
                        RowsEventData::DeleteRowsEventV1(_) | RowsEventData::DeleteRowsEvent(_) => {
                            RowsKind::Delete
                        }
                        RowsEventData::PartialUpdateRowsEvent(_) => {
                            return Err(with_hint(
                                anyhow!(
                                    "table `{}`: a partial JSON update at {at} (binlog_row_value_options=PARTIAL_JSON)",
                                    map.table
                                ),
                                "set binlog_row_value_options='' and start a new chain (export --delta-base)",
                            ));
                        }
                    };
                    let n = r.num_columns() as usize;
                    let before: Vec<bool> = r
                        .columns_before_image()
                        .map(|b| b.iter().take(n).map(|x| *x).collect())
                        .unwrap_or_default();
                    let after: Vec<bool> = r
                        .columns_after_image()
                        .map(|b| b.iter().take(n).map(|x| *x).collect())
                        .unwrap_or_default();
                    on(Seen::Rows {
                        table: &map.table,
                        kind,
                        columns: &map.columns,
                        before,
                        after,
                        data: r.rows_data(),
                        at: at.clone(),
                    })?;
                }
            }
            EventData::QueryEvent(q) => {
                on(Seen::Query {
                    default_db: &q.schema(),
                    sql: &q.query(),
                    at: at.clone(),
                })?;
            }
            EventData::TransactionPayloadEvent(p) => {
                // mysql_async unpacks the payload into the events that follow; a payload
                // it cannot read would silently yield none, so read it here first.
                let (events, bytes) = p.decompressed().and_then(events_in).with_context(|| {
                    format!("a compressed transaction at {at} that cannot be read")
                })?;
                // mysql_async unpacks it into a buffer of the size the event states: any
                // other size and it would hand on none of them.
                if bytes != p.uncompressed_size() {
                    bail!(
                        "a compressed transaction at {at} holds {bytes} bytes, but says {}",
                        p.uncompressed_size()
                    );
                }
                inner_left = events;
            }
            EventData::IncidentEvent(_) => {
                bail!("an incident event at {at}: the server lost events of its log there");
            }
            _ => {}
        }
        if inner {
            // An event of a compressed transaction has no position of its own.
            if inner_left == 0 && done && out.file_created != 0 {
                break;
            }
            continue;
        }
        // Artificial events (sent before a file's own) carry position 0.
        if end != 0 && file == to.0 {
            if end == to.1 {
                done = true;
                if out.file_created != 0 && inner_left == 0 {
                    break;
                }
            } else if end > to.1 {
                bail!(
                    "the binary log has no event ending at {}:{} (the end position); the \
                     event at {at} goes past it",
                    to.0,
                    to.1
                );
            }
        }
        if end != 0 && file.as_str() > to.0 {
            bail!(
                "reading the binary log went past the end position {}:{}",
                to.0,
                to.1
            );
        }
    }
    if !done {
        bail!(
            "the binary log ended at {file} before the end position {}:{}",
            to.0,
            to.1
        );
    }
    let _ = stream.close().await;
    Ok(out)
}

/// When a log file was created: the time stamp of its Format_description event, read
/// through a replication stream opened at the file's start (where an event begins in
/// whatever log now has that name) and closed at once.
pub async fn file_created(cfg: &ServerConfig, file: &str, files: &[String]) -> Result<u32> {
    let read = read(cfg, "", (file, 4), (file, 4), files, |_| Ok(())).await?;
    if read.file_created == 0 {
        bail!("the server sent no format description for {file}");
    }
    Ok(read.file_created)
}

/// How many events a compressed transaction's payload holds, and its bytes: each event
/// starts with the 19-byte header whose bytes 9..13 give the event's size. Read as a
/// stream (a payload can be large), which also proves it can be read whole.
fn events_in(mut payload: impl std::io::Read) -> std::io::Result<(u64, u64)> {
    use std::io::{Error, ErrorKind, Read};
    let (mut n, mut bytes) = (0, 0);
    loop {
        let mut header = [0u8; 19];
        match payload.read(&mut header[..1])? {
            0 => return Ok((n, bytes)),
            _ => payload.read_exact(&mut header[1..])?,
        }
        let size = u32::from_le_bytes([header[9], header[10], header[11], header[12]]) as u64;
        let rest = size.checked_sub(19).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidData,
                format!("an inner event of {size} bytes"),
            )
        })?;
        let skipped = std::io::copy(&mut (&mut payload).take(rest), &mut std::io::sink())?;
        if skipped != rest {
            return Err(Error::new(
                ErrorKind::UnexpectedEof,
                "a truncated inner event",
            ));
        }
        n += 1;
        bytes += size;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake inner event: its header with `size`, then `size - 19` bytes.
    fn event(size: u32) -> Vec<u8> {
        let mut e = vec![0u8; 19];
        e[4] = 30; // WRITE_ROWS_EVENT
        e[9..13].copy_from_slice(&size.to_le_bytes());
        e.resize(size.max(19) as usize, 7);
        e
    }

    #[test]
    fn a_compressed_transaction_s_events_are_counted_through_its_reader() {
        use mysql_async::binlog::TransactionPayloadCompressionType;
        use mysql_async::binlog::events::TransactionPayloadEvent;
        let two = [event(40), event(19)].concat();
        let three = [event(19), event(300), event(25)].concat();
        for (payload, want) in [(&[][..], 0), (&two[..], 2), (&three[..], 3)] {
            let p = TransactionPayloadEvent::new(
                payload.len() as u64,
                TransactionPayloadCompressionType::NONE,
                payload.len() as u64,
                payload,
            );
            let read = p.decompressed().and_then(events_in).ok();
            assert_eq!(read, Some((want, payload.len() as u64)));
        }
        // Cut short, or a header that claims less than itself: unreadable, never zero.
        let mut cut = two.clone();
        cut.truncate(two.len() - 1);
        let mut small = event(19);
        small[9..13].copy_from_slice(&5u32.to_le_bytes());
        for bad in [&cut[..], &two[..10], &small[..]] {
            assert!(events_in(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rotations_are_named_by_the_servers_files() {
        let files = vec!["bin.000001".to_string(), "bin.000002".to_string()];
        assert_eq!(
            rotated_to(b"bin.000002\x05A\xfe\xff", &files).as_deref(),
            Some("bin.000002")
        );
        assert_eq!(rotated_to(b"other.000001", &files), None);
        let id = reader_server_id();
        assert!(id >= 1 << 30, "{id}");
    }
}
