//! Site master data as plain records: the site, its crews (班组), workers and work items (部位/分项).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::bank::BankAccount;
use crate::ids::{CrewId, SiteId, WorkItemId, WorkerId};
use crate::units::{Fen, Quantity};

/// A construction site (工地).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct Site {
    /// Stable id, e.g. `site-hz-01`.
    pub id: SiteId,
    /// Short code people use, e.g. `HZ-01`.
    pub code: String,
    pub name: String,
    /// IANA time zone of the site: "today" and every log date are calendar dates there.
    pub timezone: String,
}

/// A crew (班组) led by one leader, usually of one trade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Crew {
    /// Stable id, e.g. `site-hz-01/crew-1`.
    pub id: CrewId,
    /// Display name, e.g. `周长班组`.
    pub name: String,
    /// The crew leader's name.
    pub leader: String,
    /// The crew's main trade code (工种).
    pub trade: String,
}

/// A worker on a site's roster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct Worker {
    /// Stable id, e.g. `w-0001`.
    pub id: WorkerId,
    pub name: String,
    pub phone: String,
    /// Trade code (工种), e.g. `rebar`.
    pub trade: String,
    /// The crew the worker belongs to.
    pub crew: CrewId,
    /// Pay for one work-day.
    pub day_rate: Fen,
    /// Pay for one hour of overtime.
    pub overtime_rate: Fen,
    /// Whether the worker is still on the site; inactive workers cannot be logged.
    pub active: bool,
    /// Added on site and not yet confirmed by head office: loggable at once, marked pending there.
    #[serde(default)]
    pub pending: bool,
    /// Where his pay is sent (head office writes it; empty when none is on record). Not in the
    /// serialized roster: read it through [`Worker::bank_account`].
    #[serde(skip)]
    pub bank: BankAccount,
}

impl Worker {
    /// The worker's bank account: the one way to it, so that sealing the number changes one place.
    pub fn bank_account(&self) -> &BankAccount {
        &self.bank
    }
}

/// A work item or location (部位/分项) with its plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkItem {
    /// Stable id, e.g. `site-hz-01/wi-1.1`.
    pub id: WorkItemId,
    /// WBS code, e.g. `1.1`.
    pub code: String,
    /// Name, e.g. `基础土方开挖`.
    pub name: String,
    /// Unit of quantity, e.g. `m³`.
    pub unit: String,
    /// Quantity planned in total.
    pub planned_quantity: Quantity,
    /// Budget for the item.
    pub budget: Fen,
    /// Planned start date.
    pub planned_start: Option<NaiveDate>,
    /// Planned end date.
    pub planned_end: Option<NaiveDate>,
}

/// Everything in a site's master-data document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roster {
    /// The site itself.
    pub site: Site,
    /// Crews, ordered by id.
    pub crews: Vec<Crew>,
    /// Workers, ordered by id.
    pub workers: Vec<Worker>,
    /// Work items, ordered by id.
    pub work_items: Vec<WorkItem>,
    /// Workers added on site, whatever head office did with them since, ordered by id.
    #[serde(default)]
    pub pending_workers: Vec<PendingWorker>,
    /// Rate changes with the date they take effect, ordered by worker and date.
    #[serde(default)]
    pub rates: Vec<Rate>,
}

/// Where head office stands on a worker added on site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PendingStatus {
    /// Added on site, not yet looked at: loggable, marked pending.
    Pending,
    /// Head office took the worker onto the roster.
    Confirmed,
    /// The same person as another worker (`merged_into`): their lines count under that one.
    Merged,
}

impl PendingStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            PendingStatus::Pending => "pending",
            PendingStatus::Confirmed => "confirmed",
            PendingStatus::Merged => "merged",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<PendingStatus> {
        Some(match s {
            "pending" => PendingStatus::Pending,
            "confirmed" => PendingStatus::Confirmed,
            "merged" => PendingStatus::Merged,
            _ => return None,
        })
    }
}

/// A worker a foreman added on site (table `pending_workers`, the only part of a site's master data
/// a foreman writes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct PendingWorker {
    /// Derived from the ID card when there is one (keyed: [`WorkerId::from_id_card_keyed`]), else
    /// random.
    pub id: WorkerId,
    pub name: String,
    pub phone: String,
    pub trade: String,
    pub crew: CrewId,
    pub day_rate: Fen,
    pub overtime_rate: Fen,
    /// The ID-card number masked ([`crate::ids::mask_id_card`]); "" if none was given. What every
    /// reader but head office (through the server) sees.
    pub id_card_masked: String,
    /// The ID-card number sealed to the org ([`crate::pii`], base64); "" if none was given. Only
    /// the server opens it, for head office and payroll.
    #[serde(skip_serializing)]
    #[serde(default)]
    pub id_card_sealed: String,
    /// Who added the worker (the writer's user name or id).
    pub added_by: String,
    /// When, RFC 3339 on the adding phone's clock.
    pub added_at: String,
    pub status: PendingStatus,
    /// The worker this one was merged into, when `status` is `merged`.
    pub merged_into: Option<WorkerId>,
}

impl PendingWorker {
    /// The worker as the roster lists it.
    pub fn as_worker(&self) -> Worker {
        Worker {
            id: self.id.clone(),
            name: self.name.clone(),
            phone: self.phone.clone(),
            trade: self.trade.clone(),
            crew: self.crew.clone(),
            day_rate: self.day_rate,
            overtime_rate: self.overtime_rate,
            active: true,
            pending: self.status == PendingStatus::Pending,
            // Added on site: head office records the account once it confirms him.
            bank: BankAccount::default(),
        }
    }
}

pub use crate::ids::mask_id_card;

/// A worker's rates from a date on (table `rates`, key `{worker}@{from}`), written by head office.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs, reason = "fields and variants named for what they hold")]
pub struct Rate {
    pub worker: WorkerId,
    /// The first site calendar date the rates apply to.
    pub from: NaiveDate,
    pub day_rate: Fen,
    pub overtime_rate: Fen,
}

impl Rate {
    /// The record id: `{worker}@{YYYY-MM-DD}`.
    pub fn key(&self) -> String {
        format!("{}@{}", self.worker, self.from)
    }
}

/// Two workers that may be one person: same name and phone, different ids (so no ID card, or two
/// different ones). At least one of them is pending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PossibleDuplicate {
    /// The pending worker.
    pub worker: WorkerId,
    /// The worker it may be the same person as.
    pub other: WorkerId,
}

impl Roster {
    /// The worker with this id.
    pub fn worker(&self, id: &WorkerId) -> Option<&Worker> {
        self.workers.iter().find(|w| &w.id == id)
    }

    /// The work item with this id.
    pub fn work_item(&self, id: &WorkItemId) -> Option<&WorkItem> {
        self.work_items.iter().find(|w| &w.id == id)
    }

    /// The crew with this id.
    pub fn crew(&self, id: &CrewId) -> Option<&Crew> {
        self.crews.iter().find(|c| &c.id == id)
    }

    /// The ID-card number of `worker` masked ([`mask_id_card`]): from his own on-site record, else
    /// from one merged into him; "" when none is on record (head office's roster does not hold one).
    pub fn id_card_masked(&self, worker: &WorkerId) -> String {
        let own = self
            .pending_workers
            .iter()
            .find(|p| &p.id == worker && !p.id_card_masked.is_empty());
        let merged = || {
            self.pending_workers
                .iter()
                .find(|p| !p.id_card_masked.is_empty() && &self.resolve_worker(&p.id) == worker)
        };
        own.or_else(merged)
            .map(|p| p.id_card_masked.clone())
            .unwrap_or_default()
    }

    /// The worker whose lines `id`'s lines count as: a merged worker's target (followed through
    /// merges of merges), else `id` itself. Every report that counts by worker groups by this.
    pub fn resolve_worker(&self, id: &WorkerId) -> WorkerId {
        let mut at = id.clone();
        // A merge chain is at most as long as the list; a cycle (two offline merges into each
        // other) stops there rather than looping.
        for _ in 0..=self.pending_workers.len() {
            let next = self
                .pending_workers
                .iter()
                .find(|p| p.id == at && p.status == PendingStatus::Merged)
                .and_then(|p| p.merged_into.clone());
            match next {
                Some(n) if n != at => at = n,
                _ => break,
            }
        }
        at
    }

    /// The pending-section record of a worker added on site.
    pub fn pending_worker(&self, id: &WorkerId) -> Option<&PendingWorker> {
        self.pending_workers.iter().find(|p| &p.id == id)
    }

    /// The (day, overtime-hour) rates in force for `worker` on `date`: the rate record with the
    /// latest `from` on or before `date`, else the worker's own rates (zero for a worker not on the
    /// roster). A merged worker is paid at its target's rates.
    pub fn rate_on(&self, worker: &WorkerId, date: NaiveDate) -> (Fen, Fen) {
        let id = self.resolve_worker(worker);
        let dated = self
            .rates
            .iter()
            .filter(|r| r.worker == id && r.from <= date)
            .max_by_key(|r| r.from);
        match (dated, self.worker(&id)) {
            (Some(r), _) => (r.day_rate, r.overtime_rate),
            (None, Some(w)) => (w.day_rate, w.overtime_rate),
            (None, None) => (Fen::default(), Fen::default()),
        }
    }

    /// Pairs of workers (one of them pending) with the same name and phone but different ids.
    pub fn possible_duplicates(&self) -> Vec<PossibleDuplicate> {
        let key = |w: &Worker| {
            let phone: String = w.phone.chars().filter(char::is_ascii_digit).collect();
            (w.name.trim().to_string(), phone)
        };
        let mut out = Vec::new();
        for p in self.workers.iter().filter(|w| w.pending) {
            for o in &self.workers {
                if o.id != p.id && key(o) == key(p) && !key(p).0.is_empty() && !key(p).1.is_empty() {
                    // A pair of two pending workers is listed once.
                    if o.pending && o.id < p.id {
                        continue;
                    }
                    out.push(PossibleDuplicate {
                        worker: p.id.clone(),
                        other: o.id.clone(),
                    });
                }
            }
        }
        out
    }
}
