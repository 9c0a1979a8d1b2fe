//! Environment overrides of the configuration: `MARKETFLOW__SECTION__KEY=value` set a
//! key of the parsed file before it is deserialized, so overrides are checked like it.

use toml::{Table, Value};

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
