//! A worker's bank account, for paying through the bank (代发). The number is sensitive personal
//! information (PIPL): it leaves the server whole only in head office's bank payment file; every
//! other output shows [`BankAccount::masked`]. The full number is read through
//! [`BankAccount::number`] alone, so sealing it at rest later changes one place.

use crate::validate::Invalid;

/// Fewest digits of an account number (a short passbook account).
pub const MIN_ACCOUNT_DIGITS: usize = 8;
/// Most digits of an account number (bank cards have 16 to 19, corporate accounts up to 30).
pub const MAX_ACCOUNT_DIGITS: usize = 30;
/// Longest bank name, in characters.
pub const MAX_BANK_NAME_CHARS: usize = 100;

/// An account number (digits only, spaces dropped) and the bank's name; both empty when none is
/// on record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BankAccount {
    /// Digits only, [`MIN_ACCOUNT_DIGITS`]..=[`MAX_ACCOUNT_DIGITS`] of them, or empty.
    number: String,
    /// Free text, e.g. `中国农业银行杭州分行`.
    bank_name: String,
}

impl BankAccount {
    /// An account from what a person typed: spaces and dashes are dropped; the rest must be
    /// digits, between [`MIN_ACCOUNT_DIGITS`] and [`MAX_ACCOUNT_DIGITS`] of them. An empty number
    /// is "no account" (then the bank name must be empty too).
    pub fn new(number: &str, bank_name: &str) -> Result<BankAccount, Invalid> {
        let number: String = number.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        let bank_name = bank_name.trim().to_string();
        if !number.chars().all(|c| c.is_ascii_digit()) {
            return Err(Invalid::Malformed {
                field: "bank_account",
                reason: "an account number is digits only".into(),
            });
        }
        if !number.is_empty() && !(MIN_ACCOUNT_DIGITS..=MAX_ACCOUNT_DIGITS).contains(&number.len()) {
            return Err(Invalid::Range {
                field: "bank_account",
                reason: format!(
                    "{} digits; an account number has {MIN_ACCOUNT_DIGITS} to {MAX_ACCOUNT_DIGITS}",
                    number.len()
                ),
            });
        }
        if bank_name.chars().count() > MAX_BANK_NAME_CHARS || bank_name.chars().any(char::is_control) {
            return Err(Invalid::Malformed {
                field: "bank_name",
                reason: format!("at most {MAX_BANK_NAME_CHARS} characters, no control characters"),
            });
        }
        if number.is_empty() && !bank_name.is_empty() {
            return Err(Invalid::Malformed {
                field: "bank_account",
                reason: "a bank name without an account number".into(),
            });
        }
        Ok(BankAccount { number, bank_name })
    }

    /// Whether no account is on record.
    pub fn is_empty(&self) -> bool {
        self.number.is_empty()
    }

    /// The whole number: for head office's bank payment file and the document writer only.
    pub fn number(&self) -> &str {
        &self.number
    }

    /// The bank's name ("" when not given).
    pub fn bank_name(&self) -> &str {
        &self.bank_name
    }

    /// The first four and last four digits, the rest as `****` groups: `6222 **** **** 1234`
    /// ("" when there is no account).
    pub fn masked(&self) -> String {
        let n = &self.number;
        if n.is_empty() {
            return String::new();
        }
        // At least 8 digits: the first 4 and the last 4 never overlap.
        let hidden = n.len().saturating_sub(8);
        let stars = vec!["****"; hidden.div_ceil(4).max(1)].join(" ");
        format!("{} {stars} {}", &n[..4], &n[n.len() - 4..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_all_but_the_ends() {
        let a = BankAccount::new("6222 0212 3456 1234", "工商银行").unwrap();
        assert_eq!(a.number(), "6222021234561234");
        assert_eq!(a.masked(), "6222 **** **** 1234");
        let a = BankAccount::new("6222021234567891234", "").unwrap();
        assert_eq!(a.masked(), "6222 **** **** **** 1234");
        assert_eq!(BankAccount::default().masked(), "");
    }

    #[test]
    fn refuses_what_is_not_an_account() {
        assert!(matches!(BankAccount::new("6222x", ""), Err(Invalid::Malformed { .. })));
        assert!(matches!(BankAccount::new("1234567", ""), Err(Invalid::Range { .. })));
        assert!(matches!(
            BankAccount::new(&"1".repeat(31), ""),
            Err(Invalid::Range { .. })
        ));
        assert!(matches!(BankAccount::new("", "农行"), Err(Invalid::Malformed { .. })));
        assert!(BankAccount::new("", "").unwrap().is_empty());
    }
}
