//! Key-level config checks: environment overrides and unknown keys, all reported at once.

use toml::{Table, Value};

/// The known shape of the config: section -> keys (`*` = any key, for pass-through maps).
const KNOWN: &[(&str, &[&str])] = &[
    ("kafka", &["brokers", "client"]),
    ("kafka.client", &["*"]),
    (
        "sources",
        &["name", "kind", "topic", "format", "symbol_prefix"],
    ),
    (
        "time",
        &["max_out_of_orderness", "allowed_lateness", "idle_timeout"],
    ),
    (
        "features",
        &[
            "resolutions",
            "rolling_window",
            "benchmark",
            "correlation",
            "beta",
            "indicators",
            "risk",
            "zscore_alert",
        ],
    ),
    ("sinks", &["kafka", "parquet"]),
    ("sinks.kafka", &["topic_prefix"]),
    ("sinks.parquet", &["output", "compression"]),
    ("progress", &["interval"]),
    ("checkpoint", &["interval", "keep"]),
];

fn known(section: &str) -> Option<&'static [&'static str]> {
    KNOWN.iter().find(|(s, _)| *s == section).map(|(_, k)| *k)
}

/// Applies `MARKETFLOW__SECTION__KEY=value` (nested sections with more `__`). Values
/// are parsed as TOML (`30`, `true`, `["1m"]`), else taken as strings.
pub fn apply_env(
    table: &mut Table,
    env: impl Iterator<Item = (String, String)>,
    errors: &mut Vec<String>,
) {
    for (name, raw) in env {
        let Some(rest) = name.strip_prefix("MARKETFLOW__") else {
            continue;
        };
        let path: Vec<String> = rest.split("__").map(|p| p.to_ascii_lowercase()).collect();
        if path.len() < 2 || path.iter().any(String::is_empty) {
            errors.push(format!("{name}: expected MARKETFLOW__SECTION__KEY"));
            continue;
        }
        let value = format!("v = {raw}")
            .parse::<Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| Value::String(raw.clone()));
        if let Err(p) = set_path(table, &path, value) {
            errors.push(format!("{name}: `{p}` is not a section"));
        }
    }
}

fn set_path(table: &mut Table, path: &[String], value: Value) -> Result<(), String> {
    match path {
        [last] => {
            table.insert(last.clone(), value);
            Ok(())
        }
        [first, rest @ ..] => match table
            .entry(first.clone())
            .or_insert_with(|| Value::Table(Table::new()))
        {
            Value::Table(t) => set_path(t, rest, value),
            _ => Err(first.clone()),
        },
        [] => Ok(()),
    }
}

/// Lists every key the config does not know, with its dotted path.
pub fn unknown_keys(table: &Table, origin: &str, errors: &mut Vec<String>) {
    for (key, value) in table {
        let Some(keys) = known(key) else {
            errors.push(format!("{origin}: {key}: unknown section"));
            continue;
        };
        match value {
            Value::Table(t) => check_section(key, keys, t, origin, errors),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Value::Table(t) = item {
                        check_section(&format!("{key}[{i}]"), keys, t, origin, errors);
                    }
                }
            }
            _ => {}
        }
    }
}

fn check_section(path: &str, keys: &[&str], table: &Table, origin: &str, errors: &mut Vec<String>) {
    if keys == ["*"] {
        return;
    }
    let base = path.split('[').next().unwrap_or(path);
    for (key, value) in table {
        if !keys.contains(&key.as_str()) {
            errors.push(format!("{origin}: {path}.{key}: unknown key"));
            continue;
        }
        if let (Value::Table(t), Some(sub)) = (value, known(&format!("{base}.{key}"))) {
            check_section(&format!("{path}.{key}"), sub, t, origin, errors);
        }
    }
}
