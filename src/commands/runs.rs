//! `marketflow runs`: the run registry of a lake, from the manifests under `_runs/`.

use connectors::runs::{find_run, list_runs, RunSummary};

use crate::cli::{RunsArgs, RunsCommand, RunsFormat};
use crate::config::Validated;
use crate::UsageError;

/// Lists the runs, or prints one.
pub fn run(args: RunsArgs, config: Validated) -> anyhow::Result<()> {
    let output = super::lake_output(&config.config, args.output.as_deref())?;
    match args.show {
        Some(RunsCommand::Show { run_id }) => {
            let Some(r) = find_run(&output, &run_id)? else {
                let known: Vec<String> = list_runs(&output)?
                    .into_iter()
                    .map(|r| r.manifest.info.run_id)
                    .collect();
                return Err(UsageError(format!(
                    "no run {run_id} under {} (runs: {})",
                    output.child_url("_runs"),
                    if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    }
                ))
                .into());
            };
            match args.format {
                RunsFormat::Json => println!("{}", serde_json::to_string_pretty(&r.manifest)?),
                RunsFormat::Table => print!("{}", show(&r)),
            }
        }
        None => {
            let runs: Vec<RunSummary> = list_runs(&output)?.iter().map(RunSummary::of).collect();
            match args.format {
                RunsFormat::Json => println!("{}", serde_json::to_string_pretty(&runs)?),
                RunsFormat::Table => print!("{}", table(&runs)),
            }
        }
    }
    Ok(())
}

/// An epoch-ms time as RFC 3339, or `-`.
fn time(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| "-".into())
}

/// The runs as an aligned table, one line each.
fn table(runs: &[RunSummary]) -> String {
    let head = [
        "run_id", "status", "stage", "started", "seconds", "kind", "from", "to", "inputs",
        "records", "rows", "rejects", "workers",
    ];
    let mut lines: Vec<Vec<String>> = vec![head.iter().map(|h| h.to_string()).collect()];
    for r in runs {
        let (from, to) = match r.event_range {
            Some((a, b)) => (time(Some(a)), time(Some(b))),
            None => (time(r.requested.0), time(r.requested.1)),
        };
        lines.push(vec![
            r.run_id.clone(),
            r.status.clone(),
            r.stage.name().to_string(),
            r.started_at.clone(),
            r.duration_s.map_or("-".into(), |d| format!("{d:.1}")),
            r.kind.clone(),
            from,
            to,
            r.inputs.to_string(),
            r.records.to_string(),
            r.rows.to_string(),
            r.rejects.to_string(),
            format!("{}x{}", r.processes, r.workers / r.processes.max(1)),
        ]);
    }
    let widths: Vec<usize> = (0..head.len())
        .map(|c| lines.iter().map(|l| l[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for l in &lines {
        let cells: Vec<String> = l
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    if runs.is_empty() {
        out.push_str("(no runs)\n");
    }
    out
}

/// One run's manifest as readable text.
fn show(r: &connectors::runs::RunRecord) -> String {
    let (m, s) = (&r.manifest, RunSummary::of(r));
    let mut out = String::new();
    let mut kv = |k: &str, v: String| out.push_str(&format!("{k:<12} {v}\n"));
    kv("run_id", s.run_id.clone());
    kv("status", s.status.clone());
    kv(
        "stage",
        match &s.promoted_at {
            Some(at) => format!("{} at {at}", s.stage.name()),
            None => s.stage.name().to_string(),
        },
    );
    kv("started", s.started_at.clone());
    kv("finished", m.finished_at.clone());
    kv(
        "seconds",
        s.duration_s.map_or("-".into(), |d| format!("{d:.2}")),
    );
    kv("kind", s.kind.clone());
    kv(
        "requested",
        format!("{} .. {}", time(s.requested.0), time(s.requested.1)),
    );
    let (a, b) = s
        .event_range
        .map_or((None, None), |(a, b)| (Some(a), Some(b)));
    kv("events", format!("{} .. {}", time(a), time(b)));
    kv("resolutions", m.info.resolutions.join(", "));
    kv(
        "cluster",
        format!("{} process(es), {} worker(s)", s.processes, s.workers),
    );
    kv("input rows", m.input_rows.to_string());
    kv("records", s.records.to_string());
    kv("rejects", s.rejects.to_string());
    if let Some(e) = &s.error {
        kv("error", e.clone());
    }
    kv("inputs", String::new());
    for i in &m.info.inputs {
        out.push_str(&format!("  {i}\n"));
    }
    out.push_str("feature sets:\n");
    for (set, f) in &m.feature_sets {
        out.push_str(&format!(
            "  {set:<12} rows {:>10}  files {:>5}  bytes {:>12}  {}\n",
            f.rows, f.partitions, f.bytes, f.checksum
        ));
    }
    out
}
