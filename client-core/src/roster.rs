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
}
