//! The layers a configuration is made of (TOML text, files merged over the defaults,
//! `IPX_*` variables), and keeping secrets out of the errors they give.

use super::ConfigError;

/// Parses TOML. A syntax error says where and what, but never quotes the line: it may be
/// the line of a secret.
pub(super) fn parse_table(text: &str, origin: Option<String>) -> Result<toml::Table, ConfigError> {
    text.parse::<toml::Table>().map_err(|e| {
        let at = e.span().map(|span| {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: ")
        });
        ConfigError::Invalid {
            origin,
            message: format!("{}{}", at.unwrap_or_default(), e.message().trim()),
        }
    })
}

/// Every string under a key that names a secret (`secret`, `eab_hmac_key`), and any string
/// that holds the word (an `IPX_*` value that did not parse stays one string).
pub(super) fn collect_secrets(value: &toml::Value, under_secret: bool, out: &mut Vec<String>) {
    match value {
        toml::Value::String(s) if under_secret || s.contains("secret") => out.push(s.clone()),
        toml::Value::Array(items) => items.iter().for_each(|v| collect_secrets(v, under_secret, out)),
        toml::Value::Table(t) => t
            .iter()
            .for_each(|(k, v)| collect_secrets(v, under_secret || names_secret(k), out)),
        _ => {}
    }
}

fn names_secret(key: &str) -> bool {
    key.contains("secret") || key.ends_with("hmac_key")
}

pub(super) fn redacted(mut message: String, secrets: &[String]) -> String {
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        // As written, and as serde quotes it (escaped, in double quotes).
        message = message
            .replace(&format!("{s:?}"), "\"<redacted>\"")
            .replace(s.as_str(), "<redacted>");
    }
    message
}

pub(super) fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// `IPX_DNS_LISTEN=…` sets `dns.listen`. The value is read as TOML when it parses as one
/// (numbers, booleans, arrays) and as a plain string otherwise.
pub(super) fn apply_env(
    root: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    for (name, raw) in env {
        let Some(rest) = name.strip_prefix("IPX_") else {
            continue;
        };
        let rest = rest.to_ascii_lowercase();
        let sections: Vec<String> = root.keys().cloned().collect();
        let Some((section, key)) = sections.iter().find_map(|s| {
            rest.strip_prefix(s.as_str())
                .and_then(|k| k.strip_prefix('_'))
                .map(|k| (s.clone(), k.to_string()))
        }) else {
            continue; // IPX_LOG and friends are not config keys.
        };
        let value = format!("v = {raw}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or(toml::Value::String(raw));
        let table = root
            .get_mut(&section)
            .and_then(|v| v.as_table_mut())
            .expect("section listed");
        if !table.contains_key(&key) {
            return Err(ConfigError::Invalid {
                origin: Some(name),
                message: format!("unknown key {section}.{key}"),
            });
        }
        table.insert(key, value);
    }
    Ok(())
}
