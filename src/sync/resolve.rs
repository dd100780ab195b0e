//! Writing Zoho's records into a two-way table. Three kinds of row:
//! 1. records the table lacks are inserted, synced;
//! 2. rows not pending here take Zoho's newer version, as a mirror does;
//! 3. rows pending here (changed since they last agreed with Zoho) that
//!    Zoho changed too are conflicts: each field that differs goes to the
//!    side the rules pick, the choice is logged in `zoho.conflicts`, and the
//!    row stays pending while any field kept its local value. A version no
//!    later than the row's last push is that push's echo, not a change.
//!
//! Where the table has `zoho_changed_fields` (the columns changed here
//! since the row last agreed with Zoho, with their values then), a conflict
//! is known by field, three ways: a field changed in Zoho only takes Zoho's
//! value, one changed here only keeps the local value, and only a field
//! changed on both sides goes to the rules. Without that column a conflict
//! is known by row: every field that differs counts as changed on both
//! sides.
//!
//! Everything runs as one set of statements over the incoming rows (a JSON
//! array, or the export's staging table); the pending rows are locked while
//! they are decided, so a concurrent local edit waits and then wins.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use zoho_api::conflict::{FieldRule, Side};

use super::origin::{from_zoho, FromZoho};
use super::TwoWay;
use crate::error::ZohoFdwError;
use crate::export::Target;

/// Where the incoming rows are.
pub enum Incoming {
    /// Records as a JSON array of rows keyed by local column names.
    Json(serde_json::Value),
    /// `pg_temp.zoho_export_stage`, which an export's page was copied into.
    Stage,
}

fn spi_err(e: pgrx::spi::SpiError) -> ZohoFdwError {
    ZohoFdwError::Internal(format!("applying Zoho's changes to a two-way table: {e}"))
}

/// Writes `rows` into `target`; `clock_offset` is Zoho's clock less this
/// host's. Returns the rows inserted or changed.
pub fn apply(target: &Target, two: &TwoWay, rows: Incoming, clock_offset: chrono::Duration) -> Result<u64, ZohoFdwError> {
    let t = &target.table.sql_name;
    let (id, mt) = (target.columns[0].0.quoted(), target.columns[1].0.quoted());
    let data: Vec<(String, &str)> = target.columns[2..].iter().map(|(c, f)| (c.quoted(), f.api_name.as_str())).collect();
    let all: Vec<String> = target.columns.iter().map(|(c, _)| c.quoted()).collect();
    let sync = two.sync.quoted();
    let (src, json) = match rows {
        Incoming::Json(v) => (format!("jsonb_populate_recordset(NULL::{t}, $1::jsonb)"), Some(v)),
        Incoming::Stage => ("pg_temp.zoho_export_stage".to_string(), None),
    };
    let newer = crate::export::newer_wins(&all, "s");
    // Bound as $1 (the rows, or NULL) and $2 (Zoho's clock offset, seconds).
    let offset = clock_offset.num_milliseconds() as f64 / 1e3;
    let args = || -> Vec<DatumWithOid<'static>> { vec![json.clone().map(pgrx::JsonB).into(), offset.into()] };
    from_zoho(target.table.oid, FromZoho::AsWritten, || {
        Spi::connect_mut(|spi| -> Result<u64, ZohoFdwError> {
            // 1. New records. One whose key a row already holds (pushed, its
            // zoho_id not yet written back) is left to the push's marking.
            let key = target.columns.iter().find(|(_, f)| f.api_name.eq_ignore_ascii_case(&two.key_field)).map(|(c, _)| c.quoted());
            let by_key = key.map(|k| format!(" AND NOT EXISTS (SELECT 1 FROM {t} x WHERE x.{k} = s.{k})")).unwrap_or_default();
            let insert = format!(
                "INSERT INTO {t} AS t ({cols}, {sync}) SELECT {scols}, true FROM {src} s
                  WHERE s.{id} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {t} x WHERE x.{id} = s.{id}){by_key}
                 ON CONFLICT DO NOTHING",
                cols = all.join(", "),
                scols = all.iter().map(|c| format!("s.{c}")).collect::<Vec<_>>().join(", "),
            );
            let mut written = spi.update(&insert, None, &args()).map_err(spi_err)?.len() as u64;
            // 2. Rows that agree with Zoho take its newer version.
            // A record Zoho holds again (restored, or back in the filter) is
            // no longer flagged as deleted.
            let unflag = two.deleted_at.as_ref().map(|c| format!(", {} = NULL", c.quoted())).unwrap_or_default();
            let update = format!(
                "UPDATE {t} AS t SET {sets}{unflag} FROM {src} s WHERE t.{id} = s.{id} AND t.{sync} IS NOT FALSE AND {newer}",
                sets = all[1..].iter().map(|c| format!("{c} = s.{c}")).collect::<Vec<_>>().join(", "),
            );
            written += spi.update(&update, None, &args()).map_err(spi_err)?.len() as u64;
            // 3. Rows pending here that Zoho changed too: strictly newer, as
            // a conflict settled for this table leaves its values differing
            // from that same version of Zoho's.
            // The push keeps the version its upserts wrote, so their echo is
            // no newer than the row; a bulk job's result has no version, so
            // its echo is known by time: no later than the push's marking.
            let echo = format!("coalesce(s.{mt} <= t.{} + make_interval(secs => $2), false)", two.synced_at.quoted());
            let changed = two.changed_at.as_ref().map(|c| format!("extract(epoch FROM t.{} + make_interval(secs => $2))::float8", c.quoted())).unwrap_or_else(|| "NULL::float8".into());
            let array = |f: &dyn Fn(&str) -> String, ty: &str| {
                if data.is_empty() {
                    format!("ARRAY[]::{ty}[]")
                } else {
                    format!("ARRAY[{}]::{ty}[]", data.iter().map(|(c, _)| f(c)).collect::<Vec<_>>().join(", "))
                }
            };
            let changed_fields = two.changed_fields.as_ref().map(|c| format!("t.{}", c.quoted())).unwrap_or_else(|| "NULL::jsonb".into());
            // Per column: whether Zoho still holds the value it had when
            // the row last agreed (read back as the column's type, so that
            // the text form of the user's session, its TimeZone or number
            // format, does not count as a change).
            let zoho_kept = match &two.changed_fields {
                Some(cf) if !data.is_empty() => {
                    let cf = cf.quoted();
                    let items: Vec<String> = target.columns[2..]
                        .iter()
                        .map(|(c, _)| {
                            let key = crate::fdw::import::quote_literal(&c.name);
                            format!("coalesce(t.{cf} ? {key} AND (t.{cf} ->> {key})::{ty} IS NOT DISTINCT FROM s.{col}, false)", ty = c.type_name, col = c.quoted())
                        })
                        .collect();
                    format!("ARRAY[{}]::bool[]", items.join(", "))
                }
                _ => "NULL::bool[]".into(),
            };
            let decide = format!(
                "SELECT t.{id}::int8, {echo}, {changed}, extract(epoch FROM s.{mt})::float8, {differs}, {local}, {zoho}, {changed_fields}, {zoho_kept}
                   FROM {src} s JOIN {t} t ON t.{id} = s.{id}
                  WHERE t.{sync} IS FALSE AND (t.{mt} IS NULL OR t.{mt} < s.{mt})
                  FOR UPDATE OF t",
                differs = array(&|c| format!("t.{c}::text IS DISTINCT FROM s.{c}::text"), "bool"),
                local = array(&|c| format!("t.{c}::text"), "text"),
                zoho = array(&|c| format!("s.{c}::text"), "text"),
            );
            let pending: Vec<Pending> = spi
                .select(&decide, None, &args())
                .map_err(spi_err)?
                .map(|r| -> Result<Pending, pgrx::spi::SpiError> {
                    Ok(Pending {
                        id: r.get(1)?.unwrap_or_default(),
                        echo: r.get(2)?.unwrap_or(false),
                        local_changed: r.get::<f64>(3)?.and_then(from_epoch),
                        zoho_modified: r.get::<f64>(4)?.and_then(from_epoch),
                        differs: r.get::<Vec<bool>>(5)?.unwrap_or_default(),
                        local: r.get::<Vec<Option<String>>>(6)?.unwrap_or_default(),
                        zoho: r.get::<Vec<Option<String>>>(7)?.unwrap_or_default(),
                        changed_here: r.get::<pgrx::JsonB>(8)?.and_then(|j| match j.0 {
                            serde_json::Value::Object(m) => Some(m.into_iter().map(|(k, _)| k).collect()),
                            _ => None,
                        }),
                        zoho_kept: r.get::<Vec<bool>>(9)?.unwrap_or_default(),
                    })
                })
                .collect::<Result<_, _>>()
                .map_err(spi_err)?;
            let names: Vec<&str> = target.columns[2..].iter().map(|(c, _)| c.name.as_str()).collect();
            let (groups, log) = settle(two, &data, &names, &pending);
            for ((zoho_cols, keep_pending), ids) in groups {
                let mut sets: Vec<String> = zoho_cols.iter().map(|&i| format!("{c} = s.{c}", c = data[i].0)).collect();
                sets.push(format!("{mt} = s.{mt}"));
                sets.push(format!("{sync} = {}", !keep_pending));
                // Columns that took Zoho's value agree with it again.
                if let Some(c) = &two.changed_fields {
                    let c = c.quoted();
                    sets.push(match keep_pending {
                        true => format!("{c} = t.{c} - $4::text[]"),
                        false => format!("{c} = NULL"),
                    });
                }
                let sql = format!("UPDATE {t} AS t SET {} FROM {src} s WHERE t.{id} = s.{id} AND t.{id} = ANY($3) AND t.{sync} IS FALSE", sets.join(", "));
                let mut a = args();
                a.push(ids.into());
                if two.changed_fields.is_some() {
                    a.push(zoho_cols.iter().map(|&i| names[i].to_string()).collect::<Vec<_>>().into());
                }
                written += spi.update(&sql, None, &a).map_err(spi_err)?.len() as u64;
            }
            log.write(spi, target.table.oid)?;
            Ok(written)
        })
    })
}

fn from_epoch(secs: f64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros((secs * 1e6).round() as i64)
}

/// A row pending here that Zoho changed too, as the decision query read it.
struct Pending {
    id: i64,
    echo: bool,
    local_changed: Option<DateTime<Utc>>,
    zoho_modified: Option<DateTime<Utc>>,
    /// Per data column: whether the two sides hold different values.
    differs: Vec<bool>,
    local: Vec<Option<String>>,
    zoho: Vec<Option<String>>,
    /// The columns changed here since the row last agreed with Zoho, where
    /// the table keeps them.
    changed_here: Option<std::collections::BTreeSet<String>>,
    /// Per data column: whether Zoho still holds the value the column had
    /// when the row last agreed (only for columns changed here).
    zoho_kept: Vec<bool>,
}

/// Rows to update, grouped by (the data columns that take Zoho's value,
/// whether the row stays pending).
type Groups = BTreeMap<(Vec<usize>, bool), Vec<i64>>;

/// Decides every pending row: which fields Zoho wins, and the log.
fn settle(two: &TwoWay, data: &[(String, &str)], names: &[&str], pending: &[Pending]) -> (Groups, ConflictLog) {
    let mut groups = Groups::new();
    let mut log = ConflictLog::default();
    // The pull never reads a field the table owns, so whether the local
    // edit touched one is unknown: the row goes out again to be sure.
    let owns_some = two.rules.owned_by(Side::Local).next().is_some();
    for p in pending.iter().filter(|p| !p.echo) {
        let zoho_time = p.zoho_modified.unwrap_or_else(Utc::now);
        let (mut zoho_cols, mut keep) = (Vec::new(), owns_some);
        for (i, (_, field)) in data.iter().enumerate() {
            if !p.differs.get(i).copied().unwrap_or(false) {
                continue;
            }
            if let Some(changed_here) = &p.changed_here {
                // Changed in Zoho only: no conflict, Zoho's value.
                if !changed_here.contains(names[i]) {
                    zoho_cols.push(i);
                    continue;
                }
                // Changed here only (Zoho still holds the value both had):
                // no conflict, the local value goes out.
                if p.zoho_kept.get(i).copied().unwrap_or(false) {
                    keep = true;
                    continue;
                }
            }
            let (side, why) = two.rules.winner(field, p.local_changed, zoho_time);
            match side {
                Side::Zoho => zoho_cols.push(i),
                Side::Local => keep = true,
            }
            // A field Zoho owns is only Zoho's own change arriving.
            if two.rules.rule(field) != FieldRule::OwnedBy(Side::Zoho) {
                log.push(p, i, field, side, why);
            }
        }
        groups.entry((zoho_cols, keep)).or_default().push(p.id);
    }
    (groups, log)
}

/// Conflicts to record, as columns for one INSERT.
#[derive(Default)]
struct ConflictLog {
    ids: Vec<i64>,
    fields: Vec<String>,
    local: Vec<Option<String>>,
    zoho: Vec<Option<String>>,
    winners: Vec<String>,
    reasons: Vec<String>,
    local_changed: Vec<Option<f64>>,
    zoho_modified: Vec<Option<f64>>,
}

impl ConflictLog {
    fn push(&mut self, p: &Pending, i: usize, field: &str, side: Side, why: String) {
        let secs = |t: Option<DateTime<Utc>>| t.map(|t| t.timestamp_micros() as f64 / 1e6);
        self.ids.push(p.id);
        self.fields.push(field.to_string());
        self.local.push(p.local.get(i).cloned().flatten());
        self.zoho.push(p.zoho.get(i).cloned().flatten());
        self.winners.push(side.as_str().to_string());
        self.reasons.push(why);
        self.local_changed.push(secs(p.local_changed));
        self.zoho_modified.push(secs(p.zoho_modified));
    }

    fn write(self, spi: &mut pgrx::spi::SpiClient<'_>, target: pg_sys::Oid) -> Result<(), ZohoFdwError> {
        if self.ids.is_empty() {
            return Ok(());
        }
        // local_changed_at is stored on this host's clock, as the row has it.
        spi.update(
            "INSERT INTO zoho.conflicts (target, record_id, field, local_value, zoho_value, winner, reason, local_changed_at, zoho_modified_time)
             SELECT $1::oid::regclass, r.id, r.f, r.lv, r.zv, r.w, r.why, to_timestamp(r.lc), to_timestamp(r.zm)
               FROM unnest($2::int8[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::float8[], $9::float8[]) AS r(id, f, lv, zv, w, why, lc, zm)",
            None,
            &[
                target.into(),
                self.ids.into(),
                self.fields.into(),
                self.local.into(),
                self.zoho.into(),
                self.winners.into(),
                self.reasons.into(),
                self.local_changed.into(),
                self.zoho_modified.into(),
            ],
        )
        .map_err(spi_err)?;
        Ok(())
    }
}
