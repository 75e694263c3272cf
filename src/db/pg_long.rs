//! A PostgreSQL read's long values, in pieces (`db::long_values`): the select list's
//! long columns wrapped and flagged, and the rows set aside read again by key, on the
//! same session and so inside the same snapshot.

use anyhow::{Context, Result, anyhow};
use tokio_postgres::Client;

use crate::config::Engine;
use crate::db::catalog::ReadColumn;
use crate::db::long_values::{self, Long, LongForm};
use crate::db::postgres::{self, error};

/// Wrap the long columns of a select list (`cols`, one per column) and return the
/// flag columns to append.
pub fn wrap(cols: &mut [String], columns: &[ReadColumn<'_>], long: &Long) -> Vec<String> {
    long.columns
        .iter()
        .map(|&i| {
            let form = columns[i].long.unwrap_or(LongForm::Text);
            let column = std::mem::take(&mut cols[i]);
            cols[i] = long_values::value_expr(Engine::Postgresql, form, &column, &column);
            long_values::flag_expr(Engine::Postgresql, form, &column, &column)
        })
        .collect()
}

/// The rows of one read whose long values were set aside.
pub struct SetAside<'a> {
    pub table: &'a str,
    /// `schema.table`.
    pub from: &'a str,
    /// The read's select list: values (long ones wrapped), then flags.
    pub select: &'a [String],
    pub columns: &'a [ReadColumn<'a>],
    pub long: &'a Long,
}

impl SetAside<'_> {
    /// Read each row again by its key and give it to `on_row` whole, every long value
    /// read in pieces and held once, in the text form COPY writes (or, for a column
    /// read `digest`, as its digest form).
    pub async fn rows<F>(
        &self,
        client: &Client,
        keys: Vec<Vec<Vec<u8>>>,
        on_row: &mut F,
    ) -> Result<()>
    where
        F: FnMut(&[Option<&[u8]>], &[usize]) -> Result<()>,
    {
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
            let condition =
                long_values::key_condition(Engine::Postgresql, &names, &self.long.key, &key)
                    .ok_or_else(|| anyhow!("its key is not of its column's form"))
                    .with_context(context)?;
            let sql = format!(
                "COPY (SELECT {} FROM {}{condition}) TO STDOUT",
                self.select.join(", "),
                self.from
            );
            let mut row: Option<Vec<Option<Vec<u8>>>> = None;
            postgres::copy_text_rows(client, &sql, &context, |fields| {
                row = Some(fields.iter().map(|f| f.map(<[u8]>::to_vec)).collect());
                Ok(())
            })
            .await?;
            let mut row = row
                .ok_or_else(|| anyhow!("the row is gone from the snapshot it was read in"))
                .with_context(context)?;
            for (k, &i) in self.long.columns.iter().enumerate() {
                let Some(flag) = row.get(n + k).cloned().flatten() else {
                    continue;
                };
                let (units, len) = long_values::parse_flag(&flag)
                    .ok_or_else(|| anyhow!("an unreadable length"))
                    .with_context(context)?;
                let form = self.columns[i].long.unwrap_or(LongForm::Text);
                let column = crate::db::sql::pg::ident(self.columns[i].name);
                let mut value = long_values::Gathered::new(form, true, self.columns[i].digest, len);
                for piece in long_values::pieces(Engine::Postgresql, units, len) {
                    let sql = long_values::piece_sql(
                        Engine::Postgresql,
                        form,
                        self.from,
                        &column,
                        &condition,
                        piece,
                    );
                    for m in client
                        .simple_query(&sql)
                        .await
                        .map_err(error)
                        .with_context(context)?
                    {
                        if let tokio_postgres::SimpleQueryMessage::Row(r) = m
                            && let Some(v) = r.get(0)
                        {
                            value.push(v.as_bytes());
                        }
                    }
                }
                long_values::check_length(self.columns[i].name, value.read(), len)
                    .with_context(context)?;
                let value = value.finish();
                row[i] = Some(value);
            }
            let values: Vec<Option<&[u8]>> = row[..n].iter().map(|v| v.as_deref()).collect();
            on_row(&values, &[])?;
        }
        Ok(())
    }
}
