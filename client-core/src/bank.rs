//! A worker's bank account, for paying through the bank (代发). The number is sensitive personal
//! information (PIPL): it enters a document only sealed to the org ([`crate::pii`]), with its
//! masked form beside it; it leaves the server whole only in head office's bank payment file; every
//! other output shows [`BankAccount::masked`].

use crate::pii::{OrgPiiKey, OrgPiiSecret, purpose};
use crate::validate::Invalid;

/// Fewest digits of an account number (a short passbook account).
pub const MIN_ACCOUNT_DIGITS: usize = 8;
/// Most digits of an account number (bank cards have 16 to 19, corporate accounts up to 30).
pub const MAX_ACCOUNT_DIGITS: usize = 30;
/// Longest bank name, in characters.
pub const MAX_BANK_NAME_CHARS: usize = 100;

/// The number as this copy holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Number {
    /// Typed in (or read from a record written before sealing): digits only, or "" for none.
    Clear(String),
    /// As a document holds it: sealed to the org, masked, and its keyed digest (to tell whether
    /// a number typed in again is the same one without opening the seal).
    Sealed {
        sealed: String,
        masked: String,
        digest: String,
    },
}

impl Default for Number {
    fn default() -> Self {
        Number::Clear(String::new())
    }
}

/// An account number and the bank's name; both empty when none is on record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BankAccount {
    /// Clear digits ([`MIN_ACCOUNT_DIGITS`]..=[`MAX_ACCOUNT_DIGITS`] of them, or none) or sealed.
    number: Number,
    /// Free text, e.g. `中国农业银行杭州分行`.
    bank_name: String,
}

/// What a site document's worker record holds of his account (field names as stored).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoredAccount {
    /// `bank_account_sealed`: base64 sealed box, "" when none.
    pub sealed: String,
    /// `bank_account_masked`.
    pub masked: String,
    /// `bank_account_digest`: keyed digest of the digits.
    pub digest: String,
    /// `bank_name`.
    pub bank_name: String,
}

impl BankAccount {
    /// An account from what a person typed: spaces and dashes are dropped; the rest must be
    /// digits, between [`MIN_ACCOUNT_DIGITS`] and [`MAX_ACCOUNT_DIGITS`] of them. An empty number
    /// is "no account" (then the bank name must be empty too).
    pub fn new(number: &str, bank_name: &str) -> Result<BankAccount, Invalid> {
        let number: String = number.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        let bank_name = check_bank_name(bank_name)?;
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
        if number.is_empty() && !bank_name.is_empty() {
            return Err(Invalid::Malformed {
                field: "bank_account",
                reason: "a bank name without an account number".into(),
            });
        }
        Ok(BankAccount {
            number: Number::Clear(number),
            bank_name,
        })
    }

    /// An account as a document holds it, sealed: the sealed value must have a sealed box's shape
    /// and the masked one a mask's ([`mask_account`]'s digits and `*`), both or neither.
    pub fn from_stored(s: &StoredAccount) -> Result<BankAccount, Invalid> {
        let bank_name = check_bank_name(&s.bank_name)?;
        if s.sealed.is_empty() {
            if !s.masked.is_empty() || !bank_name.is_empty() {
                return Err(Invalid::Malformed {
                    field: "bank_account_sealed",
                    reason: "a masked number or bank name without a sealed number".into(),
                });
            }
            return Ok(BankAccount::default());
        }
        crate::pii::check_sealed(&s.sealed).map_err(|e| Invalid::Malformed {
            field: "bank_account_sealed",
            reason: e.to_string(),
        })?;
        let masked_ok = (9..=40).contains(&s.masked.len())
            && s.masked.chars().all(|c| c.is_ascii_digit() || c == '*' || c == ' ')
            && s.masked.contains('*');
        if !masked_ok {
            return Err(Invalid::Malformed {
                field: "bank_account_masked",
                reason: "a masked account shows at most its first and last four digits".into(),
            });
        }
        Ok(BankAccount {
            number: Number::Sealed {
                sealed: s.sealed.clone(),
                masked: s.masked.clone(),
                digest: s.digest.clone(),
            },
            bank_name,
        })
    }

    /// Whether no account is on record.
    pub fn is_empty(&self) -> bool {
        match &self.number {
            Number::Clear(n) => n.is_empty(),
            Number::Sealed { .. } => false,
        }
    }

    /// The whole number when this copy holds it in clear (just typed in, or read from a record
    /// written before sealing); `None` when it is sealed (see [`BankAccount::open`]).
    pub fn number(&self) -> Option<&str> {
        match &self.number {
            Number::Clear(n) => Some(n),
            Number::Sealed { .. } => None,
        }
    }

    /// The whole number, opened with the org's secret when sealed: for head office's bank payment
    /// file only (the server holds the secret). "" when there is no account.
    pub fn open(&self, secret: &OrgPiiSecret) -> Result<String, crate::pii::PiiError> {
        match &self.number {
            Number::Clear(n) => Ok(n.clone()),
            Number::Sealed { sealed, .. } => secret.open(sealed),
        }
    }

    /// The bank's name ("" when not given).
    pub fn bank_name(&self) -> &str {
        &self.bank_name
    }

    /// The first four and last four digits, the rest as `****` groups: `6222 **** **** 1234`
    /// ("" when there is no account).
    pub fn masked(&self) -> String {
        match &self.number {
            Number::Clear(n) => mask_account(n),
            Number::Sealed { masked, .. } => masked.clone(),
        }
    }

    /// What a document stores of this account: a clear number is sealed to `key` (an error
    /// without a key); a sealed one is kept as it is. `same` is the digest on record: when a clear
    /// number has it, the record's sealed value is kept (no new write for the same number).
    pub fn to_stored(&self, key: Option<&OrgPiiKey>, on_record: &StoredAccount) -> crate::Result<StoredAccount> {
        Ok(match &self.number {
            Number::Clear(n) if n.is_empty() => StoredAccount::default(),
            Number::Clear(n) => {
                let key = key.ok_or(crate::Error::PiiKeyMissing)?;
                let digest = key.digest(purpose::BANK_ACCOUNT, n)?;
                let sealed = if digest == on_record.digest && !on_record.sealed.is_empty() {
                    on_record.sealed.clone()
                } else {
                    key.seal(n)?
                };
                StoredAccount {
                    sealed,
                    masked: mask_account(n),
                    digest,
                    bank_name: self.bank_name.clone(),
                }
            }
            Number::Sealed { sealed, masked, digest } => StoredAccount {
                sealed: sealed.clone(),
                masked: masked.clone(),
                digest: digest.clone(),
                bank_name: self.bank_name.clone(),
            },
        })
    }
}

fn check_bank_name(bank_name: &str) -> Result<String, Invalid> {
    let bank_name = bank_name.trim().to_string();
    if bank_name.chars().count() > MAX_BANK_NAME_CHARS || bank_name.chars().any(char::is_control) {
        return Err(Invalid::Malformed {
            field: "bank_name",
            reason: format!("at most {MAX_BANK_NAME_CHARS} characters, no control characters"),
        });
    }
    Ok(bank_name)
}

/// `n`'s first four and last four digits, the rest as `****` groups ("" for "").
pub fn mask_account(n: &str) -> String {
    if n.is_empty() {
        return String::new();
    }
    // At least 8 digits: the first 4 and the last 4 never overlap.
    let hidden = n.len().saturating_sub(8);
    let stars = vec!["****"; hidden.div_ceil(4).max(1)].join(" ");
    format!("{} {stars} {}", &n[..4.min(n.len())], &n[n.len().saturating_sub(4)..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_all_but_the_ends() {
        let a = BankAccount::new("6222 0212 3456 1234", "工商银行").unwrap();
        assert_eq!(a.number(), Some("6222021234561234"));
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

    #[test]
    fn a_stored_account_is_sealed_and_kept_when_the_same_number_comes_again() {
        let secret = crate::pii::OrgPiiSecret::generate().unwrap();
        let key = secret.public("o");
        let a = BankAccount::new("6222 0212 3456 1234", "工商银行").unwrap();
        assert!(matches!(
            a.to_stored(None, &StoredAccount::default()),
            Err(crate::Error::PiiKeyMissing)
        ));
        let s = a.to_stored(Some(&key), &StoredAccount::default()).unwrap();
        assert!(!s.sealed.contains("1234") && s.masked == "6222 **** **** 1234");
        let again = a.to_stored(Some(&key), &s).unwrap();
        assert_eq!(again, s, "the same number keeps its seal");
        let read = BankAccount::from_stored(&s).unwrap();
        assert_eq!((read.number(), read.masked().as_str()), (None, "6222 **** **** 1234"));
        assert_eq!(read.open(&secret).unwrap(), "6222021234561234");
        assert_eq!(read.to_stored(None, &s).unwrap(), s);
        let other = BankAccount::new("6222 0299 9999 1234", "工商银行").unwrap();
        assert_ne!(other.to_stored(Some(&key), &s).unwrap().sealed, s.sealed);
        let forged = StoredAccount {
            masked: "6222021234561234".into(),
            ..s
        };
        assert!(BankAccount::from_stored(&forged).is_err(), "a clear number as the mask");
    }
}
