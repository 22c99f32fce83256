//! The site master-data document: tables `info` (one record, `site`), `crews`, `workers`, `work_items`,
//! and the added tables `pending_workers` (workers a foreman added on site) and `rates` (rates with
//! an effective date), which live inside `info` (see [`crate::doc::AddedTable`]).

use automerge::transaction::Transaction;
use automerge::{Automerge, ReadDoc};

use crate::doc::{Record, put, read_added, read_table, table};
use crate::error::{Error, Result};
use crate::ids::{CrewId, DocKind, SiteId, WorkItemId, WorkerId, parse_date};
use crate::pii::OrgPiiKey;
use crate::roster::{Crew, PendingStatus, PendingWorker, Rate, Roster, Site, WorkItem, Worker};
use crate::units::{Fen, Quantity};

/// Reads the roster; `None` if the site record was never written (an empty genesis).
pub(crate) fn read(doc: &Automerge) -> Result<Option<Roster>> {
    let info = read_table(doc, &table(doc, "info")?, None)?;
    let Some(site) = info.get("site") else { return Ok(None) };
    let site = Site {
        id: SiteId::new(site.str("id")).map_err(|e| corrupt(&e))?,
        code: site.str("code"),
        name: site.str("name"),
        timezone: site.str("timezone"),
    };
    let mut crews = Vec::new();
    for (id, r) in read_table(doc, &table(doc, "crews")?, None)? {
        crews.push(Crew {
            id: CrewId::new(id).map_err(|e| corrupt(&e))?,
            name: r.str("name"),
            leader: r.str("leader"),
            trade: r.str("trade"),
        });
    }
    let mut workers = Vec::new();
    for (id, r) in read_table(doc, &table(doc, "workers")?, None)? {
        workers.push(worker(id, &r)?);
    }
    let mut work_items = Vec::new();
    for (id, r) in read_table(doc, &table(doc, "work_items")?, None)? {
        work_items.push(WorkItem {
            id: WorkItemId::new(id).map_err(|e| corrupt(&e))?,
            code: r.str("code"),
            name: r.str("name"),
            unit: r.str("unit"),
            planned_quantity: Quantity::from_milli("planned_quantity", r.int("planned_quantity_milli"))
                .map_err(|e| corrupt(&e))?,
            budget: Fen::new("budget", r.int("budget_fen")).map_err(|e| corrupt(&e))?,
            planned_start: parse_date(&r.str("planned_start")).ok(),
            planned_end: parse_date(&r.str("planned_end")).ok(),
        });
    }
    let mut pending_workers = Vec::new();
    for (id, r) in read_added(doc, DocKind::Site, "pending_workers")? {
        pending_workers.push(pending_worker(id, &r)?);
    }
    // A worker added on site is on the roster at once, unless head office merged it into another
    // or already wrote it into `workers` (which then wins).
    for p in &pending_workers {
        if p.status != PendingStatus::Merged && !workers.iter().any(|w: &Worker| w.id == p.id) {
            workers.push(p.as_worker());
        }
    }
    workers.sort_by(|a, b| a.id.cmp(&b.id));
    let mut rates = Vec::new();
    for (_, r) in read_added(doc, DocKind::Site, "rates")? {
        rates.push(Rate {
            worker: WorkerId::new(r.str("worker")).map_err(|e| corrupt(&e))?,
            from: parse_date(&r.str("from")).map_err(|e| corrupt(&e))?,
            day_rate: Fen::new("day_rate", r.int("day_rate_fen")).map_err(|e| corrupt(&e))?,
            overtime_rate: Fen::new("overtime_rate", r.int("overtime_rate_fen")).map_err(|e| corrupt(&e))?,
        });
    }
    rates.sort_by(|a, b| (&a.worker, a.from).cmp(&(&b.worker, b.from)));
    Ok(Some(Roster {
        site,
        crews,
        workers,
        work_items,
        pending_workers,
        rates,
    }))
}

fn pending_worker(id: String, r: &Record) -> Result<PendingWorker> {
    let merged_into = r.str("merged_into");
    Ok(PendingWorker {
        id: WorkerId::new(id).map_err(|e| corrupt(&e))?,
        name: r.str("name"),
        phone: r.str("phone"),
        trade: r.str("trade"),
        crew: CrewId::new(r.str("crew")).map_err(|e| corrupt(&e))?,
        day_rate: Fen::new("day_rate", r.int("day_rate_fen")).map_err(|e| corrupt(&e))?,
        overtime_rate: Fen::new("overtime_rate", r.int("overtime_rate_fen")).map_err(|e| corrupt(&e))?,
        // A record written before sealing holds the number in clear: shown masked all the same.
        id_card_masked: match r.str("id_card_masked") {
            m if m.is_empty() => crate::ids::mask_id_card(&crate::ids::normalize_id_card(&r.str("id_card"))),
            m => m,
        },
        id_card_sealed: r.str("id_card_sealed"),
        added_by: r.str("added_by"),
        added_at: r.str("added_at"),
        status: PendingStatus::parse(&r.str("status")).unwrap_or(PendingStatus::Pending),
        merged_into: if merged_into.is_empty() {
            None
        } else {
            Some(WorkerId::new(merged_into).map_err(|e| corrupt(&e))?)
        },
    })
}

fn worker(id: String, r: &Record) -> Result<Worker> {
    Ok(Worker {
        id: WorkerId::new(id).map_err(|e| corrupt(&e))?,
        name: r.str("name"),
        phone: r.str("phone"),
        trade: r.str("trade"),
        crew: CrewId::new(r.str("crew")).map_err(|e| corrupt(&e))?,
        day_rate: Fen::new("day_rate", r.int("day_rate_fen")).map_err(|e| corrupt(&e))?,
        overtime_rate: Fen::new("overtime_rate", r.int("overtime_rate_fen")).map_err(|e| corrupt(&e))?,
        active: r.bool("active", true),
        pending: false,
        bank: bank_account(r).map_err(|e| corrupt(&e.into()))?,
    })
}

/// What the worker record `r` holds of his account (field names as stored).
pub(crate) fn stored_account(r: &Record) -> crate::bank::StoredAccount {
    crate::bank::StoredAccount {
        sealed: r.str("bank_account_sealed"),
        masked: r.str("bank_account_masked"),
        digest: r.str("bank_account_digest"),
        bank_name: r.str("bank_name"),
    }
}

/// The worker record's account: sealed, or (written before sealing) the clear `bank_account`.
pub(crate) fn bank_account(r: &Record) -> std::result::Result<crate::bank::BankAccount, crate::validate::Invalid> {
    let stored = stored_account(r);
    if stored.sealed.is_empty() {
        crate::bank::BankAccount::new(&r.str("bank_account"), &stored.bank_name)
    } else {
        crate::bank::BankAccount::from_stored(&stored)
    }
}

fn corrupt(e: &Error) -> Error {
    Error::CorruptDocument {
        doc: "site".into(),
        reason: e.to_string(),
    }
}

/// Writes the site record.
pub(crate) fn put_site(tx: &mut Transaction<'_>, site: &Site) -> Result<()> {
    let t = table(tx, "info")?;
    put(tx, &t, "site", "id", site.id.as_str())?;
    put(tx, &t, "site", "code", site.code.as_str())?;
    put(tx, &t, "site", "name", site.name.as_str())?;
    put(tx, &t, "site", "timezone", site.timezone.as_str())
}

/// Writes (creates or updates) a crew.
pub(crate) fn put_crew(tx: &mut Transaction<'_>, crew: &Crew) -> Result<()> {
    let t = table(tx, "crews")?;
    let id = crew.id.as_str();
    put(tx, &t, id, "name", crew.name.as_str())?;
    put(tx, &t, id, "leader", crew.leader.as_str())?;
    put(tx, &t, id, "trade", crew.trade.as_str())
}

/// Writes (creates or updates) a worker; his account sealed to `key` ([`crate::pii`]), so no
/// account number enters the document in clear (an error without a key when one is to be sealed).
pub(crate) fn put_worker(tx: &mut Transaction<'_>, w: &Worker, key: Option<&OrgPiiKey>) -> Result<()> {
    let t = table(tx, "workers")?;
    let id = w.id.as_str();
    put(tx, &t, id, "name", w.name.as_str())?;
    put(tx, &t, id, "phone", w.phone.as_str())?;
    put(tx, &t, id, "trade", w.trade.as_str())?;
    put(tx, &t, id, "crew", w.crew.as_str())?;
    put(tx, &t, id, "day_rate_fen", w.day_rate.fen())?;
    put(tx, &t, id, "overtime_rate_fen", w.overtime_rate.fen())?;
    put(tx, &t, id, "active", w.active)?;
    // Written only when on record, so a roster without accounts writes what it always wrote.
    let bank = w.bank_account();
    let clear_on_record = tx.get(&t, format!("{id}.bank_account"))?.is_some();
    let text = |field: &str| -> Result<String> {
        Ok(match tx.get(&t, format!("{id}.{field}"))? {
            Some((automerge::Value::Scalar(v), _)) => match v.as_ref() {
                automerge::ScalarValue::Str(s) => s.to_string(),
                _ => String::new(),
            },
            _ => String::new(),
        })
    };
    let on_record = crate::bank::StoredAccount {
        sealed: text("bank_account_sealed")?,
        masked: text("bank_account_masked")?,
        digest: text("bank_account_digest")?,
        bank_name: text("bank_name")?,
    };
    if !bank.is_empty() || !on_record.sealed.is_empty() || clear_on_record {
        let stored = bank.to_stored(key, &on_record)?;
        put(tx, &t, id, "bank_account_sealed", stored.sealed.as_str())?;
        put(tx, &t, id, "bank_account_masked", stored.masked.as_str())?;
        put(tx, &t, id, "bank_account_digest", stored.digest.as_str())?;
        put(tx, &t, id, "bank_name", stored.bank_name.as_str())?;
    }
    if clear_on_record {
        // A number written in clear before sealing: blanked from the current state.
        put(tx, &t, id, "bank_account", "")?;
    }
    Ok(())
}

/// Writes (creates or updates) a work item.
pub(crate) fn put_work_item(tx: &mut Transaction<'_>, wi: &WorkItem) -> Result<()> {
    let t = table(tx, "work_items")?;
    let id = wi.id.as_str();
    put(tx, &t, id, "code", wi.code.as_str())?;
    put(tx, &t, id, "name", wi.name.as_str())?;
    put(tx, &t, id, "unit", wi.unit.as_str())?;
    put(tx, &t, id, "planned_quantity_milli", wi.planned_quantity.milli())?;
    put(tx, &t, id, "budget_fen", wi.budget.fen())?;
    put(
        tx,
        &t,
        id,
        "planned_start",
        wi.planned_start.map(|d| d.to_string()).unwrap_or_default(),
    )?;
    put(
        tx,
        &t,
        id,
        "planned_end",
        wi.planned_end.map(|d| d.to_string()).unwrap_or_default(),
    )
}

/// Writes a whole roster (only what differs creates operations).
pub(crate) fn put_roster(tx: &mut Transaction<'_>, r: &Roster, key: Option<&OrgPiiKey>) -> Result<()> {
    put_site(tx, &r.site)?;
    for c in &r.crews {
        put_crew(tx, c)?;
    }
    // Pending workers live in `pending_workers` until head office confirms them.
    for w in r.workers.iter().filter(|w| !w.pending) {
        put_worker(tx, w, key)?;
    }
    for wi in &r.work_items {
        put_work_item(tx, wi)?;
    }
    Ok(())
}

/// The key of `record` of added table `name` inside its host table.
fn added(tx: &Transaction<'_>, name: &str, record: &str) -> Result<(automerge::ObjId, String)> {
    let (host, key) = crate::doc::physical(DocKind::Site, name, record);
    Ok((table(tx, host)?, key))
}

/// Writes (creates or updates) a worker added on site, whole.
pub(crate) fn put_pending_worker(tx: &mut Transaction<'_>, p: &PendingWorker) -> Result<()> {
    let (t, id) = added(tx, "pending_workers", p.id.as_str())?;
    let id = id.as_str();
    put(tx, &t, id, "name", p.name.as_str())?;
    put(tx, &t, id, "phone", p.phone.as_str())?;
    put(tx, &t, id, "trade", p.trade.as_str())?;
    put(tx, &t, id, "crew", p.crew.as_str())?;
    put(tx, &t, id, "day_rate_fen", p.day_rate.fen())?;
    put(tx, &t, id, "overtime_rate_fen", p.overtime_rate.fen())?;
    put(tx, &t, id, "id_card_sealed", p.id_card_sealed.as_str())?;
    put(tx, &t, id, "id_card_masked", p.id_card_masked.as_str())?;
    put(tx, &t, id, "added_by", p.added_by.as_str())?;
    put(tx, &t, id, "added_at", p.added_at.as_str())?;
    put(tx, &t, id, "status", p.status.as_str())?;
    put(
        tx,
        &t,
        id,
        "merged_into",
        p.merged_into.as_ref().map(WorkerId::as_str).unwrap_or_default(),
    )
}

/// Sets where head office stands on a worker added on site (`merged_into` only when merged).
pub(crate) fn put_pending_status(
    tx: &mut Transaction<'_>,
    worker: &WorkerId,
    status: PendingStatus,
    merged_into: Option<&WorkerId>,
) -> Result<()> {
    let (t, id) = added(tx, "pending_workers", worker.as_str())?;
    put(tx, &t, &id, "status", status.as_str())?;
    put(
        tx,
        &t,
        &id,
        "merged_into",
        merged_into.map(WorkerId::as_str).unwrap_or_default(),
    )
}

/// Writes (creates or updates) a dated rate.
pub(crate) fn put_rate(tx: &mut Transaction<'_>, r: &Rate) -> Result<()> {
    let (t, id) = added(tx, "rates", &r.key())?;
    let id = id.as_str();
    put(tx, &t, id, "worker", r.worker.as_str())?;
    put(tx, &t, id, "from", r.from.to_string())?;
    put(tx, &t, id, "day_rate_fen", r.day_rate.fen())?;
    put(tx, &t, id, "overtime_rate_fen", r.overtime_rate.fen())
}
