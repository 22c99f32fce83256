//! What a person types, turned into what the store takes: a site by id, code or name; a worker by id
//! or name; dates written one way only. A code or name is taken only when it means one thing, and
//! stderr says which id it was taken for; a miss names the nearest spelling.

use anyhow::Result;
use chrono::NaiveDate;
use clap::Args;
use sitesync_core::Store;
use sitesync_core::ids::{SiteId, WorkerId, parse_date};

use crate::error::{Candidate, CliError, Kind};
use crate::msg::Msg;

/// A date more than this many days after today at the site draws a warning when written: a typo in
/// the year or month, not a plan (days are logged as they happen).
const FAR_AHEAD_DAYS: i64 = 7;

/// The site-day most commands act on.
#[derive(Args, Debug)]
pub struct SiteDay {
    /// Site id, code (HZ-01) or name.
    #[arg(long)]
    pub site: String,
    /// Date (YYYY-MM-DD, or "today" at the site).
    #[arg(long)]
    pub date: String,
}

impl SiteDay {
    /// The site and date, to read them.
    pub fn read(&self, store: &mut Store) -> Result<(SiteId, NaiveDate)> {
        let site = site(store, &self.site)?;
        let d = date(store, &site, &self.date)?;
        Ok((site, d))
    }

    /// The site and date, to write on them: a date far ahead draws a warning ([`date_to_write`]).
    pub fn write(&self, store: &mut Store) -> Result<(SiteId, NaiveDate)> {
        let site = site(store, &self.site)?;
        let d = date_to_write(store, &site, &self.date)?;
        Ok((site, d))
    }
}

/// One thing a name may mean, with every spelling that names it (id, code, name).
struct Known {
    candidate: Candidate,
    keys: Vec<String>,
}

/// A site given by id, code (`HZ-01`, any case) or name.
pub fn site(store: &Store, given: &str) -> Result<SiteId> {
    let sites = store.sites()?;
    if let Some(s) = sites.iter().find(|s| s.id.as_str() == given) {
        return Ok(s.id.clone());
    }
    let candidates: Vec<Known> = sites
        .iter()
        .map(|s| Known {
            candidate: Candidate {
                id: s.id.to_string(),
                label: format!("{} {}", s.code, s.name),
            },
            keys: vec![s.id.to_string(), s.code.clone(), s.name.clone()],
        })
        .collect();
    let id = choose(Kind::Site, given, None, &candidates)?;
    Ok(SiteId::new(id)?)
}

/// A worker given by id or name: on `site`'s roster, or, without a site, on any site's.
pub fn worker(store: &mut Store, site: Option<&SiteId>, given: &str) -> Result<WorkerId> {
    let sites = match site {
        Some(s) => vec![s.clone()],
        None => store.sites()?.into_iter().map(|s| s.id).collect(),
    };
    let mut candidates: Vec<Known> = Vec::new();
    for s in &sites {
        let roster = store.roster(s)?;
        for w in roster.workers {
            if candidates.iter().any(|k| k.candidate.id == w.id.as_str()) {
                continue;
            }
            let crew = roster
                .crews
                .iter()
                .find(|c| c.id == w.crew)
                .map_or_else(|| w.crew.to_string(), |c| c.name.clone());
            candidates.push(Known {
                candidate: Candidate {
                    id: w.id.to_string(),
                    label: format!("{}, {crew}", w.name),
                },
                keys: vec![w.id.to_string(), w.name.clone()],
            });
        }
    }
    if candidates.iter().any(|k| k.candidate.id == given) {
        return Ok(WorkerId::new(given)?);
    }
    let id = choose(Kind::Worker, given, site, &candidates)?;
    Ok(WorkerId::new(id)?)
}

/// The one candidate whose id, code or name is `given` (codes and ids compared without case);
/// announced on stderr. Several: ambiguous. None: unknown, with the nearest spelling if one is near.
fn choose(kind: Kind, given: &str, scope: Option<&SiteId>, candidates: &[Known]) -> Result<String> {
    let wanted = given.trim().to_lowercase();
    let hits: Vec<&Candidate> = candidates
        .iter()
        .filter(|k| k.keys.iter().any(|key| !key.is_empty() && key.to_lowercase() == wanted))
        .map(|k| &k.candidate)
        .collect();
    match hits.as_slice() {
        [one] => {
            eprintln!(
                "{}",
                Msg::Chose {
                    kind,
                    given,
                    chosen: one
                }
            );
            Ok(one.id.clone())
        }
        [] => Err(CliError::Unknown {
            kind,
            given: given.to_string(),
            scope: scope.map(ToString::to_string),
            nearest: nearest(&wanted, candidates),
        }
        .into()),
        many => Err(CliError::Ambiguous {
            kind,
            given: given.to_string(),
            candidates: many.iter().map(|c| (*c).clone()).collect(),
        }
        .into()),
    }
}

/// The candidate with a key nearest to `wanted` by edit distance (in characters, so one wrong
/// character of a Chinese name counts once), if near enough to be a typo: at most a third of the
/// key's length, and never more than 3 edits.
fn nearest(wanted: &str, candidates: &[Known]) -> Option<Candidate> {
    candidates
        .iter()
        .flat_map(|k| {
            k.keys
                .iter()
                .filter(|key| !key.is_empty())
                .map(move |key| (&k.candidate, key))
        })
        .map(|(c, k)| {
            let key = k.to_lowercase();
            let limit = (key.chars().count() / 3).clamp(1, 3);
            (strsim::levenshtein(wanted, &key), limit, c)
        })
        .filter(|(d, limit, _)| d <= limit)
        .min_by_key(|(d, _, _)| *d)
        .map(|(_, _, c)| c.clone())
}

/// A date written YYYY-MM-DD exactly. `2026-12-1` is refused rather than read as 2026-12-01: a
/// person who wrote it may have meant something else, and the store's dates are all in one form.
pub fn day(text: &str) -> Result<NaiveDate> {
    let t = text.trim();
    let shaped = t.len() == 10
        && t.char_indices()
            .all(|(i, c)| if i == 4 || i == 7 { c == '-' } else { c.is_ascii_digit() });
    if !shaped {
        let padded = parse_date(t).ok().map(|d| d.to_string());
        return Err(CliError::DateFormat {
            given: text.to_string(),
            padded,
        }
        .into());
    }
    Ok(parse_date(t)?)
}

/// A month written YYYY-MM; its first day.
pub fn month(text: &str) -> Result<NaiveDate> {
    let t = text.trim();
    let shaped = t.len() == 7
        && t.char_indices()
            .all(|(i, c)| if i == 4 { c == '-' } else { c.is_ascii_digit() });
    if !shaped {
        return Err(CliError::MonthFormat {
            given: text.to_string(),
        }
        .into());
    }
    day(&format!("{t}-01")).map_err(|_| {
        CliError::MonthFormat {
            given: text.to_string(),
        }
        .into()
    })
}

/// A date argument: YYYY-MM-DD, or `today` in the site's time zone.
pub fn date(store: &mut Store, site: &SiteId, text: &str) -> Result<NaiveDate> {
    if text == "today" {
        Ok(store.today(site)?)
    } else {
        day(text)
    }
}

/// A date that something is about to be written on: as [`date`], with a warning (not an error: a
/// planned absence may be entered early) when it is more than a week after today at the site.
pub fn date_to_write(store: &mut Store, site: &SiteId, text: &str) -> Result<NaiveDate> {
    let d = date(store, site, text)?;
    let today = store.today(site)?;
    let ahead = (d - today).num_days();
    if ahead > FAR_AHEAD_DAYS {
        warn(&Msg::FarAhead {
            date: &d.to_string(),
            today: &today.to_string(),
            days: ahead,
        });
    }
    Ok(d)
}

/// Says something worth a second look on stderr; the command goes on and exits 0.
pub fn warn(m: &Msg<'_>) {
    eprintln!("{}{m}", Msg::Warning);
}
