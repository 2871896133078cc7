//! Secret values: `secret:NAME` resolved from the environment or a directory of files.
//!
//! A [`Secret`] prints as `***` in every `Debug`/`Display`, so `check` output and logs
//! cannot show it.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cell::RefCell;
use std::fmt;
use std::path::PathBuf;

/// How a value names a secret instead of holding it: `secret:NAME`.
pub const PREFIX: &str = "secret:";

#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The value itself: call only where it is used, never to print it.
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(MASK)
    }
}

/// What a set secret prints as.
pub const MASK: &str = "***";

/// As `check` prints it: the mask, or an empty string for an empty secret.
impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if self.0.is_empty() { "" } else { MASK })
    }
}

/// Where `secret:NAME` values come from (`secret_store:` in the config).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SecretStore {
    /// `SECRET_REDIS_PASSWORD` for `secret:redis/password`.
    Env {
        #[serde(default = "default_prefix")]
        prefix: String,
    },
    /// The file `<dir>/redis/password` for `secret:redis/password`, trailing newline removed.
    File { dir: PathBuf },
}

fn default_prefix() -> String {
    "SECRET_".into()
}

impl Default for SecretStore {
    fn default() -> Self {
        SecretStore::Env {
            prefix: default_prefix(),
        }
    }
}

impl SecretStore {
    pub fn resolve(&self, name: &str) -> Result<String, String> {
        if name.is_empty() || name.split('/').any(|p| p.is_empty() || p == "..") {
            return Err(format!("`secret:{name}` is not a valid secret name"));
        }
        match self {
            SecretStore::Env { prefix } => {
                let var = format!(
                    "{prefix}{}",
                    name.replace(['/', '-', '.'], "_").to_uppercase()
                );
                std::env::var(&var).map_err(|_| {
                    format!("secret `{name}` not found: environment variable `{var}` is not set")
                })
            }
            SecretStore::File { dir } => {
                let path = dir.join(name);
                std::fs::read_to_string(&path)
                    .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
                    .map_err(|e| {
                        format!(
                            "secret `{name}` not found: cannot read {}: {e}",
                            path.display()
                        )
                    })
            }
        }
    }
}

thread_local! {
    static ACTIVE_STORE: RefCell<SecretStore> = RefCell::new(SecretStore::default());
}

/// Makes `store` the one [`Secret`] deserialization uses on this thread while `f` runs.
pub fn with_store<R>(store: &SecretStore, f: impl FnOnce() -> R) -> R {
    let previous = ACTIVE_STORE.with(|s| s.replace(store.clone()));
    let r = f();
    ACTIVE_STORE.with(|s| *s.borrow_mut() = previous);
    r
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Resolved inside the visitor, so that an unknown secret is reported at the value's
        // line and column with its key path, like any other bad value.
        d.deserialize_string(SecretVisitor)
    }
}

struct SecretVisitor;

/// A config value as written, or the secret it names (`secret:NAME`) from the store of
/// [`with_store`]: for a visitor that reads a value which may hold a secret and parses it
/// further (a URL with a password), reporting errors at the value's line and column.
pub fn resolve<E: serde::de::Error>(text: &str) -> Result<Secret, E> {
    resolve_text(text).map_err(E::custom)
}

/// Not generic, so that each deserializer's error type adds only a `map_err`.
fn resolve_text(text: &str) -> Result<Secret, String> {
    match text.strip_prefix(PREFIX) {
        Some(name) => ACTIVE_STORE.with(|s| s.borrow().resolve(name)).map(Secret),
        None => Ok(Secret(text.to_owned())),
    }
}

impl serde::de::Visitor<'_> for SecretVisitor {
    type Value = Secret;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string, or secret:NAME")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Secret, E> {
        resolve(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "\"***\" ***");
    }

    #[test]
    fn env_store_maps_slashes_to_underscores() {
        std::env::set_var("SECRETTEST_REDIS_PASSWORD", "pw1");
        let store = SecretStore::Env {
            prefix: "SECRETTEST_".into(),
        };
        assert_eq!(store.resolve("redis/password"), Ok("pw1".into()));
        let err = store.resolve("nope").unwrap_err();
        assert!(err.contains("SECRETTEST_NOPE"), "{err}");
    }

    #[test]
    fn file_store_reads_and_trims() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("redis")).unwrap();
        std::fs::write(dir.path().join("redis/password"), "pw2\n").unwrap();
        let store = SecretStore::File {
            dir: dir.path().into(),
        };
        assert_eq!(store.resolve("redis/password"), Ok("pw2".into()));
        assert!(store.resolve("../etc/passwd").is_err());
    }

    #[test]
    fn deserializing_resolves_through_the_active_store() {
        std::env::set_var("SECRET_DESER_TEST", "pw3");
        let s: Secret = yaml_serde::from_str("secret:deser/test").unwrap();
        assert_eq!(s.expose(), "pw3");
        let plain: Secret = yaml_serde::from_str("literal").unwrap();
        assert_eq!(plain.expose(), "literal");
    }
}
