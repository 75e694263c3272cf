//! A MySQL read's long values, in pieces (`db::long_values`): the select list's long
//! columns wrapped and flagged, and the rows set aside read again by key, on the same
//! session and so inside the same snapshot.

use anyhow::{Context, Result, anyhow};
use mysql_async::Conn;
use mysql_async::prelude::*;

use crate::config::Engine;
use crate::db::catalog::ReadColumn;
use crate::db::long_values::{self, Long, LongForm};
use crate::db::mysql::{error, select_list};

/// Wrap the long columns of a select list (`cols`, one per column, in their read
/// forms) and return the flag columns to append after the conversion checks.
pub fn wrap(cols: &mut [String], columns: &[ReadColumn<'_>], long: &Long) -> Vec<String> {
    let bare = crate::db::sql::my::ident;
    long.columns
        .iter()
        .map(|&i| {
            let read = std::mem::take(&mut cols[i]);
            let column = bare(columns[i].name);
            cols[i] = long_values::value_expr(Engine::Mysql, LongForm::Text, &column, &read);
            long_values::flag_expr(Engine::Mysql, LongForm::Text, &column, &read)
        })
        .collect()
}

/// The rows of one read whose long values were set aside.
pub struct SetAside<'a> {
    pub table: &'a str,
    /// `db.table`.
    pub from: &'a str,
    /// The read's select list: values (long ones wrapped), checks, flags.
    pub select: &'a [String],
    pub columns: &'a [ReadColumn<'a>],
    pub long: &'a Long,
    /// The columns whose conversion is checked, in the checks' order.
    pub checked: &'a [usize],
}

impl SetAside<'_> {
    /// Read each row again by its key and give it to `on_row` whole, every long value
    /// read in pieces and held once.
    pub async fn rows<F>(
        &self,
        conn: &mut Conn,
        keys: Vec<Vec<Vec<u8>>>,
        on_row: &mut F,
    ) -> Result<()>
    where
        F: FnMut(&[Option<&[u8]>], &[usize]) -> Result<()>,
    {
        let (reads, ..) = select_list(self.columns, "");
        let names: Vec<&str> = self.columns.iter().map(|c| c.name).collect();
        let n = self.columns.len();
        for key in keys {
            let context = || {
                format!(
                    "reading table `{}`: the long values of the row ({})",
                    self.table,
                    long_values::shown_key(&key)
                )
            };
            let condition = long_values::key_condition(Engine::Mysql, &names, &self.long.key, &key)
                .ok_or_else(|| anyhow!("its key is not of its column's form"))
                .with_context(context)?;
            let row: Option<mysql_async::Row> = conn
                .query_first(format!(
                    "SELECT {} FROM {}{condition}",
                    self.select.join(", "),
                    self.from
                ))
                .await
                .map_err(error)
                .with_context(context)?;
            let row = row
                .ok_or_else(|| anyhow!("the row is gone from the snapshot it was read in"))
                .with_context(context)?;
            let bytes = |i: usize| match row.as_ref(i) {
                Some(mysql_async::Value::Bytes(b)) => Some(b.as_slice()),
                _ => None,
            };
            let mut long_values: Vec<(usize, Vec<u8>)> = Vec::new();
            for (k, &i) in self.long.columns.iter().enumerate() {
                let Some(flag) = bytes(n + self.checked.len() + k) else {
                    continue;
                };
                let (chars, len) = long_values::parse_flag(flag)
                    .ok_or_else(|| anyhow!("an unreadable length"))
                    .with_context(context)?;
                let mut value = long_values::Gathered::new(LongForm::Text, false, false, len);
                for piece in long_values::pieces(Engine::Mysql, chars, len) {
                    let sql = long_values::piece_sql(
                        Engine::Mysql,
                        LongForm::Text,
                        self.from,
                        &reads[i],
                        &condition,
                        piece,
                    );
                    let part: Option<mysql_async::Row> = conn
                        .query_first(sql)
                        .await
                        .map_err(error)
                        .with_context(context)?;
                    if let Some(mysql_async::Value::Bytes(b)) =
                        part.as_ref().and_then(|r| r.as_ref(0))
                    {
                        value.push(b);
                    }
                }
                long_values::check_length(self.columns[i].name, value.read(), len)
                    .with_context(context)?;
                let value = value.finish();
                long_values.push((i, value));
            }
            let values: Vec<Option<&[u8]>> = (0..n)
                .map(|i| match long_values.iter().find(|(j, _)| *j == i) {
                    Some((_, v)) => Some(v.as_slice()),
                    None => bytes(i),
                })
                .collect();
            let lossy: Vec<usize> = self
                .checked
                .iter()
                .enumerate()
                .filter(|&(k, _)| bytes(n + k) == Some(b"0"))
                .map(|(_, &c)| c)
                .collect();
            on_row(&values, &lossy)?;
        }
        Ok(())
    }
}

/// The long columns of a typed read (`verify --deep --source`), and which of them are
/// compared as bytes (their pieces then read as hex digits, as the canonical form is).
pub struct TypedLong {
    pub long: Long,
    /// Positions (in the read's columns) of the long columns read as hex.
    pub hex: Vec<usize>,
    /// Positions of the long columns given as their digest form when long
    /// (`long_values::Gathered`): those compared as they are read.
    pub digest: Vec<usize>,
    /// Positions of the long columns compared as the base64 of their bytes (a mapping's
    /// `encode`), given as the digest form of that text when it is long.
    pub base64: Vec<usize>,
}

impl TypedLong {
    /// How the long column at `i` is read in pieces: as hex digits when compared as
    /// bytes, as its characters otherwise.
    fn form(&self, i: usize) -> LongForm {
        match self.hex.contains(&i) {
            true => LongForm::Bytea,
            false => LongForm::Text,
        }
    }

    /// Wrap the long columns of a select list; the flag columns to append.
    pub fn wrap(&self, cols: &mut [String], columns: &[(&str, bool)]) -> Vec<String> {
        self.long
            .columns
            .iter()
            .map(|&i| {
                let read = std::mem::take(&mut cols[i]);
                let column = crate::db::sql::my::ident(columns[i].0);
                cols[i] = long_values::value_expr(Engine::Mysql, LongForm::Text, &column, &read);
                long_values::flag_expr(Engine::Mysql, self.form(i), &column, &read)
            })
            .collect()
    }

    /// The key values of a typed row, as text.
    pub fn key_of(&self, row: &mysql_async::Row) -> Result<Vec<Vec<u8>>> {
        self.long
            .key
            .iter()
            .map(|&(i, _)| match row.as_ref(i) {
                Some(mysql_async::Value::Int(v)) => Ok(v.to_string().into_bytes()),
                Some(mysql_async::Value::UInt(v)) => Ok(v.to_string().into_bytes()),
                Some(mysql_async::Value::Bytes(b)) => Ok(b.clone()),
                _ => Err(anyhow!("a primary-key value of another form")),
            })
            .collect()
    }
}

/// The rows of one typed read whose long values were set aside.
pub struct TypedAside<'a> {
    pub table: &'a str,
    pub from: &'a str,
    pub select: &'a [String],
    /// The read's columns: names, and whether each is read as its stored bytes.
    pub columns: &'a [(&'a str, bool)],
    pub long: &'a TypedLong,
    pub checks: &'a [usize],
}

impl TypedAside<'_> {
    /// Read each row again by its key (binary protocol, as the stream) and give it to
    /// `on_row`, every long value read in pieces and held once (bytes as hex digits).
    pub async fn rows<F>(
        &self,
        conn: &mut Conn,
        keys: Vec<Vec<Vec<u8>>>,
        on_row: &mut F,
    ) -> Result<()>
    where
        F: FnMut(&[crate::db::catalog::Typed<'_>], &[usize]) -> Result<()>,
    {
        use crate::db::catalog::Typed;
        let n = self.columns.len();
        let names: Vec<&str> = self.columns.iter().map(|c| c.0).collect();
        for key in keys {
            let context = || {
                format!(
                    "reading `{}` for verify: the long values of the row ({})",
                    self.table,
                    long_values::shown_key(&key)
                )
            };
            let condition =
                long_values::key_condition(Engine::Mysql, &names, &self.long.long.key, &key)
                    .ok_or_else(|| anyhow!("its key is not of its column's form"))
                    .with_context(context)?;
            let row: Option<mysql_async::Row> = conn
                .exec_first(
                    format!(
                        "SELECT {} FROM {}{condition}",
                        self.select.join(", "),
                        self.from
                    ),
                    (),
                )
                .await
                .map_err(error)
                .with_context(context)?;
            let row = row
                .ok_or_else(|| anyhow!("the row is gone from the snapshot it was read in"))
                .with_context(context)?;
            let mut long: Vec<(usize, Vec<u8>)> = Vec::new();
            for (k, &i) in self.long.long.columns.iter().enumerate() {
                let Some(mysql_async::Value::Bytes(flag)) = row.as_ref(n + self.checks.len() + k)
                else {
                    continue;
                };
                let (units, len) = long_values::parse_flag(flag)
                    .ok_or_else(|| anyhow!("an unreadable length"))
                    .with_context(context)?;
                let form = self.long.form(i);
                // Pieces of what the stream reads: a value read as its stored bytes is
                // cut by bytes, as its flag counts them (hex digits are of the bytes).
                let read = crate::db::mysql_typed::read_expr(
                    names[i],
                    self.columns[i].1 || form == LongForm::Bytea,
                );
                let digest = self.long.digest.contains(&i);
                let mut value = match self.long.base64.contains(&i) {
                    true => long_values::Gathered::base64(),
                    false => long_values::Gathered::new(form, false, digest, len),
                };
                for piece in long_values::pieces(Engine::Mysql, units, len) {
                    let sql = long_values::piece_sql(
                        Engine::Mysql,
                        form,
                        self.from,
                        &read,
                        &condition,
                        piece,
                    );
                    let part: Option<mysql_async::Row> = conn
                        .exec_first(sql, ())
                        .await
                        .map_err(error)
                        .with_context(context)?;
                    if let Some(mysql_async::Value::Bytes(b)) =
                        part.as_ref().and_then(|r| r.as_ref(0))
                    {
                        value.push(b);
                    }
                }
                long_values::check_length(names[i], value.read(), len).with_context(context)?;
                long.push((i, value.finish()));
            }
            let (mut typed, lossy) = crate::db::mysql_typed::typed_row(&row, n, self.checks);
            for (i, v) in &long {
                typed[*i] = match self.long.form(*i) {
                    _ if long_values::is_digest(v) => Typed::Digest(v),
                    LongForm::Bytea => Typed::Hex(v),
                    LongForm::Text => Typed::Bytes(v),
                };
            }
            on_row(&typed, &lossy)?;
        }
        Ok(())
    }
}
