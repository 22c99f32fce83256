//! Which language the CLI speaks: Chinese when the locale says so, English otherwise. `--help` stays
//! English (clap's own text); everything the CLI writes itself follows this.

use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Zh,
}

impl Lang {
    /// As POSIX ranks the variables for messages: `LC_ALL`, then `LC_MESSAGES`, then `LANG`; the
    /// first one set and not empty decides, and only a value starting with `zh` (`zh_CN.UTF-8`,
    /// `zh_TW`, `zh`) means Chinese. `LC_ALL=C` over `LANG=zh_CN.UTF-8` is English, as in every
    /// other program.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Lang {
        let decides = ["LC_ALL", "LC_MESSAGES", "LANG"]
            .iter()
            .find_map(|k| var(k).filter(|v| !v.is_empty()));
        if decides.is_some_and(|v| v.starts_with("zh")) {
            Lang::Zh
        } else {
            Lang::En
        }
    }
}

/// The language of this run, read from the environment once.
pub fn lang() -> Lang {
    static LANG: OnceLock<Lang> = OnceLock::new();
    *LANG.get_or_init(|| Lang::from_vars(|k| std::env::var(k).ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(vars: &[(&str, &str)]) -> Lang {
        Lang::from_vars(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn the_first_set_variable_decides() {
        assert_eq!(with(&[]), Lang::En);
        assert_eq!(with(&[("LANG", "zh_CN.UTF-8")]), Lang::Zh);
        assert_eq!(
            with(&[("LANG", "en_US.UTF-8"), ("LC_MESSAGES", "zh_CN.UTF-8")]),
            Lang::Zh
        );
        assert_eq!(with(&[("LANG", "zh_CN.UTF-8"), ("LC_ALL", "C")]), Lang::En);
        assert_eq!(with(&[("LANG", "zh_CN.UTF-8"), ("LC_ALL", "")]), Lang::Zh);
        assert_eq!(with(&[("LANG", "de_DE.UTF-8")]), Lang::En);
    }
}
