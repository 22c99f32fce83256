//! SQLite's placeholders (`?`, `?N`) rewritten to PostgreSQL's (`$k`), so one statement text runs on
//! both engines.
//!
//! The scanner skips what PostgreSQL would not read as a placeholder: string literals (`'…'`, with
//! `''` inside), quoted identifiers (`"…"`), line comments (`--`) and block comments (`/* … */`,
//! nested as PostgreSQL nests them). It does not know `E'…\'…'` escapes or `$$`-quoted bodies, nor
//! PostgreSQL's `?` operators (`jsonb ? key`): statements that need them take no placeholders and go
//! through [`Sql::batch`](sitesync_core::store::sql::Sql::batch), which is never rewritten.

use sitesync_core::{Error, Result};

/// PostgreSQL's limit on a statement's parameters (the protocol carries the count in 16 bits).
const MAX_PARAMETER: u32 = 65_535;

/// `sql` with `?` numbered `$1, $2, …` in order and `?N` as `$N`; a statement using both forms is
/// refused, as it is ambiguous to a reader (SQLite numbers a bare `?` after the largest `?N` seen).
pub(crate) fn to_dollar(sql: &str) -> Result<String> {
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + 8);
    // Everything before `copied` is in `out`; the scanner only stops on ASCII bytes, so the slices
    // below always fall on character boundaries.
    let mut copied = 0;
    let mut bare = 0u32;
    let mut numbered = false;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            quote @ (b'\'' | b'"') => i = past_quoted(b, i, quote),
            b'-' if b.get(i + 1) == Some(&b'-') => {
                i = b[i..].iter().position(|&c| c == b'\n').map_or(b.len(), |n| i + n + 1);
            }
            b'/' if b.get(i + 1) == Some(&b'*') => i = past_block_comment(b, i),
            b'?' => {
                out.push_str(&sql[copied..i]);
                let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
                let k = if digits == 0 {
                    bare += 1;
                    bare
                } else {
                    numbered = true;
                    let text = &sql[i + 1..i + 1 + digits];
                    match text.parse::<u32>() {
                        Ok(n) if (1..=MAX_PARAMETER).contains(&n) => n,
                        _ => {
                            return Err(Error::Database(format!(
                                "placeholder ?{text} is out of 1..={MAX_PARAMETER}"
                            )));
                        }
                    }
                };
                out.push('$');
                out.push_str(&k.to_string());
                i += 1 + digits;
                copied = i;
            }
            _ => i += 1,
        }
    }
    if bare > 0 && numbered {
        return Err(Error::Database(format!(
            "a statement mixes bare `?` and numbered `?N` placeholders: {sql}"
        )));
    }
    out.push_str(&sql[copied..]);
    Ok(out)
}

/// The index past a `quote`-delimited token opened at `start`, where a doubled quote stands for
/// itself; an unterminated one runs to the end (PostgreSQL reports it).
fn past_quoted(b: &[u8], start: usize, quote: u8) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        if b[i] == quote {
            if b.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    b.len()
}

/// The index past a block comment opened at `start`, counting nested `/* */` pairs.
fn past_block_comment(b: &[u8], start: usize) -> usize {
    let mut depth = 0usize;
    let mut i = start;
    while i + 1 < b.len() {
        match (b[i], b[i + 1]) {
            (b'/', b'*') => {
                depth += 1;
                i += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(sql: &str) -> String {
        to_dollar(sql).unwrap()
    }

    #[test]
    fn bare_placeholders_are_numbered_in_order() {
        assert_eq!(
            ok("INSERT INTO t VALUES (?, ?, ?)"),
            "INSERT INTO t VALUES ($1, $2, $3)"
        );
        assert_eq!(ok("SELECT 1"), "SELECT 1");
        assert_eq!(
            ok("SELECT x::text FROM t WHERE y=?"),
            "SELECT x::text FROM t WHERE y=$1"
        );
    }

    #[test]
    fn numbered_placeholders_keep_their_number_and_may_repeat() {
        assert_eq!(
            ok("SELECT ?2 WHERE a = ?1 OR b = ?1 OR c = ?10"),
            "SELECT $2 WHERE a = $1 OR b = $1 OR c = $10"
        );
    }

    #[test]
    fn literals_identifiers_and_comments_are_left_alone() {
        assert_eq!(
            ok("SELECT '?', 'it''s ?', \"odd?\"\"name\", ? FROM t"),
            "SELECT '?', 'it''s ?', \"odd?\"\"name\", $1 FROM t"
        );
        assert_eq!(
            ok("SELECT ? -- why? because\n, ? /* ?1 /* nested ? */ still ? */ , ?"),
            "SELECT $1 -- why? because\n, $2 /* ?1 /* nested ? */ still ? */ , $3"
        );
        assert_eq!(ok("SELECT '工地?', ? -- 备注?"), "SELECT '工地?', $1 -- 备注?");
        assert_eq!(ok("SELECT 'unterminated ?"), "SELECT 'unterminated ?");
        // The guard's regular expression ends in `$` and must survive untouched.
        assert_eq!(ok("SELECT ?1 ~ '^[0-9]{4}$'"), "SELECT $1 ~ '^[0-9]{4}$'");
    }

    #[test]
    fn mixed_or_impossible_placeholders_are_refused() {
        assert!(matches!(to_dollar("SELECT ?, ?1"), Err(Error::Database(_))));
        assert!(matches!(to_dollar("SELECT ?2, ?"), Err(Error::Database(_))));
        assert!(matches!(to_dollar("SELECT ?0"), Err(Error::Database(_))));
        assert!(matches!(to_dollar("SELECT ?99999999999"), Err(Error::Database(_))));
        // Both forms only inside literals or comments are no mix.
        assert_eq!(ok("SELECT ?1, '?' -- ?"), "SELECT $1, '?' -- ?");
    }
}
