//! The site master-data document: tables `info` (one record, `site`), `crews`, `workers`, `work_items`.

use automerge::transaction::Transaction;
use automerge::{Automerge, ReadDoc};

use crate::doc::{Record, put, read_table, table};
use crate::error::{Error, Result};
use crate::ids::{CrewId, SiteId, WorkItemId, WorkerId, parse_date};
use crate::roster::{Crew, Roster, Site, WorkItem, Worker};
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
    Ok(Some(Roster {
        site,
        crews,
        workers,
        work_items,
    }))
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
        bank: crate::bank::BankAccount::new(&r.str("bank_account"), &r.str("bank_name"))
            .map_err(|e| corrupt(&e.into()))?,
    })
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

/// Writes (creates or updates) a worker.
pub(crate) fn put_worker(tx: &mut Transaction<'_>, w: &Worker) -> Result<()> {
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
    if !bank.is_empty() || tx.get(&t, format!("{id}.bank_account"))?.is_some() {
        put(tx, &t, id, "bank_account", bank.number())?;
        put(tx, &t, id, "bank_name", bank.bank_name())?;
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
pub(crate) fn put_roster(tx: &mut Transaction<'_>, r: &Roster) -> Result<()> {
    put_site(tx, &r.site)?;
    for c in &r.crews {
        put_crew(tx, c)?;
    }
    for w in &r.workers {
        put_worker(tx, w)?;
    }
    for wi in &r.work_items {
        put_work_item(tx, wi)?;
    }
    Ok(())
}
