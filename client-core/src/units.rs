//! Fixed-point units of the domain: money in fen, work-days in hundredths, time in minutes,
//! quantities in thousandths. No floating point touches a wage.
//!
//! Each type parses the decimal a person types ("1.0" work-days, "8.5" hours, "12.75" m³) exactly and
//! refuses what it cannot represent instead of rounding it silently.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Parses `text` as a decimal and scales it by `scale`, refusing anything that is not a whole number of
/// the smallest unit once scaled (e.g. 0.333 hours is not a whole number of minutes).
fn parse_scaled(field: &'static str, text: &str, scale: i64) -> Result<i64> {
    let value =
        Decimal::from_str(text.trim()).map_err(|_| Error::invalid(field, format!("{text:?} is not a number")))?;
    let scaled = value
        .checked_mul(Decimal::from(scale))
        .ok_or_else(|| Error::invalid(field, format!("{text} is too large")))?;
    if scaled.fract() != Decimal::ZERO {
        return Err(Error::invalid(
            field,
            format!("{text} has more precision than is recorded"),
        ));
    }
    i64::try_from(scaled).map_err(|_| Error::invalid(field, format!("{text} is too large")))
}

/// Writes `value / scale` with exactly `decimals` decimals.
fn fmt_scaled(f: &mut fmt::Formatter<'_>, value: i64, scale: i64, decimals: usize) -> fmt::Result {
    let sign = if value < 0 { "-" } else { "" };
    let abs = value.unsigned_abs();
    let scale = scale.unsigned_abs();
    if decimals == 0 {
        write!(f, "{sign}{}", abs / scale)
    } else {
        write!(f, "{sign}{}.{:0width$}", abs / scale, abs % scale, width = decimals)
    }
}

/// A fixed-point number as text: `fixed(150, 2)` is `1.50`, `fixed(-5, 3)` is `-0.005`. The one
/// formatter for every stored unit (work-days in hundredths, quantities in thousandths …), so that no
/// figure passes through floating point on its way to a person.
pub fn fixed(value: i64, decimals: u32) -> String {
    struct Fixed(i64, u32);
    impl fmt::Display for Fixed {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            fmt_scaled(f, self.0, 10_i64.pow(self.1), self.1 as usize)
        }
    }
    Fixed(value, decimals.min(18)).to_string()
}

/// Minutes as hours with two decimals: `90` is `1.50`. Truncates below a hundredth of an hour
/// (a minute is 1.67 hundredths), which is how the reports have always shown hours.
pub fn hours(minutes: i64) -> String {
    fixed(minutes.saturating_mul(100) / 60, 2)
}

/// An amount in fen as people read it, with thousands separators: `¥1,234.50`, `-¥3.00`. The API, the
/// exports and the CLI all print money through this.
pub fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    let whole = (abs / 100).to_string();
    let mut grouped = String::with_capacity(whole.len() + whole.len() / 3);
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{sign}¥{grouped}.{:02}", abs % 100)
}

/// Work-days (工日) in hundredths: `100` is one full day, `50` half a day. Valid range 0–3 days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WorkDays(u16);

impl WorkDays {
    /// The most work-days one line may hold: three days' pay for one day is already suspicious.
    pub const MAX: WorkDays = WorkDays(300);

    /// Work-days from hundredths, rejecting anything outside 0–3 days.
    pub fn from_centi(centi: i64) -> Result<Self> {
        if !(0..=i64::from(Self::MAX.0)).contains(&centi) {
            return Err(Error::invalid(
                "work_days",
                format!("{} work-days is outside 0–3", Centi(centi)),
            ));
        }
        Ok(WorkDays(centi as u16))
    }

    /// Parses a decimal such as `1.0` or `0.5`.
    pub fn parse(text: &str) -> Result<Self> {
        Self::from_centi(parse_scaled("work_days", text, 100)?)
    }

    /// The value in hundredths of a work-day.
    pub fn centi(self) -> i64 {
        i64::from(self.0)
    }
}

impl fmt::Display for WorkDays {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_scaled(f, self.centi(), 100, 2)
    }
}

/// Helper to show raw hundredths in error messages.
struct Centi(i64);

impl fmt::Display for Centi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_scaled(f, self.0, 100, 2)
    }
}

/// A duration in whole minutes, at most one day (24 h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Minutes(u16);

impl Minutes {
    /// Twenty-four hours: no line, and no worker's day, may exceed it.
    pub const DAY: Minutes = Minutes(24 * 60);

    /// Minutes from a count, rejecting negatives and more than 24 hours.
    pub fn from_min(field: &'static str, min: i64) -> Result<Self> {
        if !(0..=i64::from(Self::DAY.0)).contains(&min) {
            return Err(Error::invalid(field, format!("{min} minutes is outside 0–24 hours")));
        }
        Ok(Minutes(min as u16))
    }

    /// Parses hours as a decimal (`8`, `0.5`, `1.25`) into whole minutes.
    pub fn parse_hours(field: &'static str, text: &str) -> Result<Self> {
        Self::from_min(field, parse_scaled(field, text, 60)?)
    }

    /// The number of minutes.
    pub fn minutes(self) -> i64 {
        i64::from(self.0)
    }
}

impl fmt::Display for Minutes {
    /// Shows hours with two decimals, as people read timesheets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = self.minutes() / 60;
        let m = self.minutes() % 60;
        if m == 0 {
            write!(f, "{h}h")
        } else {
            write!(f, "{h}h{m:02}")
        }
    }
}

/// Money in fen (分, 1/100 yuan). Never negative in this domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fen(i64);

impl Fen {
    /// Money from fen, rejecting negative amounts.
    pub fn new(field: &'static str, fen: i64) -> Result<Self> {
        if fen < 0 {
            return Err(Error::invalid(field, "money cannot be negative"));
        }
        Ok(Fen(fen))
    }

    /// Parses yuan as a decimal (`430`, `430.50`).
    pub fn parse_yuan(field: &'static str, text: &str) -> Result<Self> {
        Self::new(field, parse_scaled(field, text, 100)?)
    }

    /// The amount in fen.
    pub fn fen(self) -> i64 {
        self.0
    }
}

impl fmt::Display for Fen {
    /// As [`yuan`] writes it: `¥1,234.50`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&yuan(self.0))
    }
}

/// A quantity of work in thousandths of its unit (m³, t, m² …). Never negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Quantity(i64);

impl Quantity {
    /// A quantity from thousandths, rejecting negatives.
    pub fn from_milli(field: &'static str, milli: i64) -> Result<Self> {
        if milli < 0 {
            return Err(Error::invalid(field, "quantity cannot be negative"));
        }
        Ok(Quantity(milli))
    }

    /// Parses a decimal quantity (`12.5`).
    pub fn parse(field: &'static str, text: &str) -> Result<Self> {
        Self::from_milli(field, parse_scaled(field, text, 1000)?)
    }

    /// The quantity in thousandths.
    pub fn milli(self) -> i64 {
        self.0
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_scaled(f, self.0, 1000, 3)
    }
}

/// The cost of one labor line in fen: work-days × day rate + overtime hours × overtime rate,
/// rounded half up once per line (the rule payroll uses). Saturates at the largest amount instead of
/// wrapping; within the bounds of [`crate::validate`] it is always exact, and every stored line is
/// checked with [`checked_line_cost`] before it is summed.
pub fn line_cost(work_days: WorkDays, day_rate: Fen, overtime: Minutes, overtime_rate: Fen) -> Fen {
    checked_line_cost(work_days, day_rate, overtime, overtime_rate).unwrap_or(Fen(i64::MAX))
}

/// [`line_cost`], or `None` when the cost does not fit in 64 bits (a rate of 6 × 10¹⁸ fen once
/// wrapped a line's cost to ¥-1,000.00).
pub fn checked_line_cost(work_days: WorkDays, day_rate: Fen, overtime: Minutes, overtime_rate: Fen) -> Option<Fen> {
    // Common denominator 6000 = 100 (centi-days) × 60 (minutes per hour). The operands are at most
    // 300 × 2⁶³ × 60 and 1440 × 2⁶³ × 100, far inside i128; only the final narrowing can fail.
    let num = i128::from(work_days.centi()) * i128::from(day_rate.fen()) * 60
        + i128::from(overtime.minutes()) * i128::from(overtime_rate.fen()) * 100;
    i64::try_from((num + 3000) / 6000).ok().map(Fen)
}

/// Adds amounts of money (or any count summed in reports) without wrapping: a sum that would pass
/// `i64::MAX` stays there. Stored lines are bounded so that no real sum comes near it; this only
/// keeps a report of damaged data from showing a negative total.
pub fn add_saturating(a: i64, b: i64) -> i64 {
    a.saturating_add(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_people_type() {
        assert_eq!(WorkDays::parse("1.0").unwrap().centi(), 100);
        assert_eq!(WorkDays::parse("0.5").unwrap().centi(), 50);
        assert_eq!(WorkDays::parse(" 1.25 ").unwrap().centi(), 125);
        assert_eq!(Minutes::parse_hours("hours", "8").unwrap().minutes(), 480);
        assert_eq!(Minutes::parse_hours("overtime", "0.5").unwrap().minutes(), 30);
        assert_eq!(Quantity::parse("quantity", "12.5").unwrap().milli(), 12_500);
        assert_eq!(Fen::parse_yuan("rate", "430.5").unwrap().fen(), 43_050);
    }

    #[test]
    fn refuses_what_it_cannot_hold() {
        assert!(WorkDays::parse("3.01").is_err());
        assert!(WorkDays::parse("-0.5").is_err());
        assert!(WorkDays::parse("0.333").is_err());
        assert!(WorkDays::parse("one").is_err());
        assert!(Minutes::parse_hours("hours", "24.5").is_err());
        assert!(Minutes::parse_hours("hours", "0.001").is_err());
        assert!(Fen::new("rate", -1).is_err());
        assert!(Quantity::from_milli("quantity", -1).is_err());
    }

    #[test]
    fn cost_rounds_half_up_per_line() {
        let d = |c| WorkDays::from_centi(c).unwrap();
        let m = |x| Minutes::from_min("overtime", x).unwrap();
        let f = |x| Fen::new("rate", x).unwrap();
        assert_eq!(line_cost(d(100), f(43_000), m(0), f(8_062)).fen(), 43_000);
        // 0.5 × 381.01 = 190.505 yuan → 19050.5 fen → rounds up to 19051.
        assert_eq!(line_cost(d(50), f(38_101), m(0), f(0)).fen(), 19_051);
        // one hour of overtime at 80.62 plus a day at 430.
        assert_eq!(line_cost(d(100), f(43_000), m(60), f(8_062)).fen(), 51_062);
        // 30 minutes at 80.63/h = 40.315 → 4031.5 fen → 4032.
        assert_eq!(line_cost(d(0), f(0), m(30), f(8_063)).fen(), 4_032);
    }

    #[test]
    fn cost_never_wraps() {
        let d = |c| WorkDays::from_centi(c).unwrap();
        let m = |x| Minutes::from_min("overtime", x).unwrap();
        let f = |x| Fen::new("rate", x).unwrap();
        // The rate of the security review: ¥61,489,146,912,364,838.72 a day.
        let huge = f(6_148_914_691_236_483_872);
        assert_eq!(checked_line_cost(d(300), huge, m(0), f(0)), None);
        assert_eq!(line_cost(d(300), huge, m(0), f(0)).fen(), i64::MAX);
        assert_eq!(checked_line_cost(d(100), huge, m(0), f(0)), Some(huge));
        assert_eq!(checked_line_cost(d(0), f(0), m(1440), f(i64::MAX)), None);
        assert_eq!(add_saturating(i64::MAX, 1), i64::MAX);
    }

    #[test]
    fn displays_fixed_point() {
        assert_eq!(WorkDays::from_centi(50).unwrap().to_string(), "0.50");
        assert_eq!(Fen::new("x", 43_050).unwrap().to_string(), "¥430.50");
        assert_eq!(Quantity::from_milli("x", 1_500).unwrap().to_string(), "1.500");
        assert_eq!(Minutes::from_min("x", 510).unwrap().to_string(), "8h30");
        assert_eq!(Fen::new("x", 58_689_154).unwrap().to_string(), "¥586,891.54");
        assert_eq!(yuan(-123_456_789), "-¥1,234,567.89");
        assert_eq!(yuan(i64::MIN), "-¥92,233,720,368,547,758.08");
        assert_eq!(yuan(5), "¥0.05");
        assert_eq!(fixed(150, 2), "1.50");
        assert_eq!(fixed(-5, 3), "-0.005");
        assert_eq!(fixed(7, 0), "7");
        // 9,007,199,254,740,993 is the first integer an f64 cannot hold.
        assert_eq!(fixed(9_007_199_254_740_993, 2), "90071992547409.93");
        assert_eq!(hours(90), "1.50");
    }
}
